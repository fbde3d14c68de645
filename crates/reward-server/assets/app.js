// Niceties only: every page works without this script.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Ask before a form marked data-confirm is sent (revoking an API key).
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  // A form marked data-once is sent once: a second click while the first is under way would
  // rotate a secret twice.
  for (const form of document.querySelectorAll("form[data-once]")) {
    form.addEventListener("submit", (event) => {
      if (form.dataset.sent) event.preventDefault();
      form.dataset.sent = "yes";
    });
    // A page restored by the Back button may send it again.
    window.addEventListener("pageshow", () => { delete form.dataset.sent; });
  }

  // Copy buttons, shown only where the clipboard can be written.
  if (navigator.clipboard) {
    for (const button of document.querySelectorAll("button[data-copy]")) {
      const source = document.getElementById(button.dataset.copy);
      if (!source) continue;
      button.hidden = false;
      button.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(source.textContent.trim());
          button.textContent = "Copied";
        } catch {
          button.textContent = "Copy failed";
        }
        setTimeout(() => { button.textContent = "Copy"; }, 2000);
      });
    }
  }

  // Times are rendered in UTC; show them in the reader's time zone, keeping UTC as a tooltip.
  for (const time of document.querySelectorAll("time[datetime]")) {
    const date = new Date(time.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) continue;
    time.title = time.textContent;
    const options = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" };
    if (date.getFullYear() !== new Date().getFullYear()) options.year = "numeric";
    time.textContent = date.toLocaleString(undefined, options);
  }

  // After a refused form, take keyboard and screen-reader users to the list of errors.
  const summary = document.getElementById("error-summary");
  if (summary) {
    summary.tabIndex = -1;
    summary.focus();
  }
});
