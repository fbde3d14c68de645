//! Headless Chromium driven over WebDriver: chromedriver on a free loopback port, a fresh
//! profile, a 1280×900 window. When Chromium or chromedriver is missing the browser tests skip
//! with one line, unless `REWARD_REQUIRE_BROWSER=1` (as `.ci/run` sets) makes that a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tempfile::TempDir;
use tokio::sync::{Semaphore, SemaphorePermit};

const SKIPPED: &str =
    "skipped: dashboard browser tests (install chromium and chromium-driver, or run .ci/run)";
/// How long a page may take to show what a test waits for.
pub const WAIT: Duration = Duration::from_secs(20);
pub const WIDTH: u32 = 1280;
const HEIGHT: u32 = 900;

/// One Chromium at a time: the machine has two cores, and the rest of the suite runs beside.
static ONE_AT_A_TIME: Semaphore = Semaphore::const_new(1);

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

pub struct Browser {
    client: Option<Client>,
    driver: tokio::process::Child,
    _profile: TempDir,
    _turn: SemaphorePermit<'static>,
}

impl Browser {
    /// A browser, or `None` (after saying so) when none is installed and none is required.
    pub async fn start() -> Option<Self> {
        let driver = find_program(&["chromedriver"]);
        let chromium = find_program(&["chromium", "chromium-browser"]);
        let (Some(driver), Some(chromium)) = (driver, chromium) else {
            if std::env::var("REWARD_REQUIRE_BROWSER").as_deref() == Ok("1") {
                panic!("REWARD_REQUIRE_BROWSER=1, but chromium or chromedriver is not installed");
            }
            // Straight to stderr: the test harness captures `eprintln!` of passing tests, and
            // a skip must be seen.
            let _ = writeln!(std::io::stderr(), "{SKIPPED}");
            return None;
        };
        let turn = ONE_AT_A_TIME.acquire().await.expect("browser semaphore");
        let port = free_port();
        let driver = tokio::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so Drop can end chromedriver and its Chromium together.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let webdriver = format!("http://127.0.0.1:{port}");
        wait_until_ready(&webdriver).await;
        let profile = TempDir::new().expect("profile dir");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={WIDTH},{HEIGHT}"),
                ],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .expect("start a Chromium session");
        client
            .set_window_size(WIDTH, HEIGHT)
            .await
            .expect("window size");
        Some(Self {
            client: Some(client),
            driver,
            _profile: profile,
            _turn: turn,
        })
    }

    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("browser is open")
    }

    /// Ends the session cleanly (Chromium quits); Drop covers a test that failed before.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client().goto(url).await.expect("navigate");
    }

    pub async fn path(&self) -> String {
        let url = self.client().current_url().await.expect("current url");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits for an element to be there (pages load after a click or a redirect).
    async fn wait_for(&self, locator: Locator<'_>, what: &str) -> Element {
        match self
            .client()
            .wait()
            .at_most(WAIT)
            .for_element(locator)
            .await
        {
            Ok(element) => element,
            Err(error) => panic!("no {what} on {}: {error}", self.path().await),
        }
    }

    pub async fn find(&self, css: &str) -> Element {
        self.wait_for(Locator::Css(css), css).await
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client()
            .find_all(Locator::Css(css))
            .await
            .expect("find all")
            .len()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input.clear().await.expect("clear");
        input.send_keys(text).await.expect("type");
    }

    /// Chooses the option of the `<select>` at `css` whose value is `value`.
    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .expect("select");
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    /// Clicks the button whose visible text is `label`.
    pub async fn click_button(&self, label: &str) {
        let xpath = format!("//button[normalize-space()='{label}']");
        let button = self
            .wait_for(Locator::XPath(&xpath), &format!("button {label}"))
            .await;
        button.click().await.expect("click button");
    }

    /// Clicks the link whose text is exactly `text`.
    pub async fn click_link(&self, text: &str) {
        let link = self
            .wait_for(Locator::LinkText(text), &format!("link {text}"))
            .await;
        link.click().await.expect("click link");
    }

    /// Waits until the page's path (and query) satisfies `done`.
    pub async fn wait_for_path(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let path = self.path().await;
            if done(&path) {
                return path;
            }
            assert!(Instant::now() < deadline, "still on {path}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reloads `url` until the text of `css` satisfies `done`; returns that text.
    pub async fn reload_until(&self, url: &str, css: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            self.goto(url).await;
            let text = match self.client().find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if done(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} on {url} still reads {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits, without reloading, until the text of `css` satisfies `done`. The page may be
    /// navigating meanwhile (a form just posted): an element gone stale between finding it and
    /// reading it is looked up again.
    pub async fn wait_for_text(&self, css: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let element = self.find(css).await;
            let text = match element.text().await {
                Ok(text) => Some(text),
                Err(error) if is_stale(&error) => None,
                Err(error) => panic!("the text of {css}: {error}"),
            };
            if let Some(text) = text.as_deref().filter(|text| done(text)) {
                return text.to_owned();
            }
            assert!(Instant::now() < deadline, "{css} still reads {text:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The seed's first step: signs in at `/` with an API key.
    pub async fn sign_in(&self, base_url: &str, key: &str) {
        self.goto(&format!("{base_url}/")).await;
        self.type_into("#api_key", key).await;
        self.click_button("Sign in").await;
        self.wait_for_path(|path| path == "/settings/webhooks")
            .await;
    }

    /// Sets the window's width, keeping its height.
    pub async fn set_width(&self, width: u32) {
        self.client()
            .set_window_size(width, HEIGHT)
            .await
            .expect("window width");
    }

    /// How far the page reaches past the window's right edge, in CSS pixels (0 when nothing
    /// makes the reader scroll sideways), and the deepest elements that reach past it.
    pub async fn overflow(&self) -> (i64, Vec<String>) {
        let found = self
            .client()
            .execute(
                r#"const edge = document.documentElement.clientWidth;
                   const past = [...document.querySelectorAll('body *')]
                     .filter(e => e.getBoundingClientRect().right > edge + 0.5)
                     .filter(e => ![...e.children].some(c => c.getBoundingClientRect().right > edge + 0.5))
                     .slice(0, 5)
                     .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
                          + ' ' + Math.round(e.getBoundingClientRect().right - edge) + 'px');
                   return [document.documentElement.scrollWidth - edge, past];"#,
                vec![],
            )
            .await
            .expect("page width");
        let px = found[0].as_i64().expect("a number");
        let elements = found[1]
            .as_array()
            .expect("a list")
            .iter()
            .map(|element| element.as_str().unwrap_or_default().to_owned())
            .collect();
        (px, elements)
    }

    /// A PNG of the whole page at the window's width.
    pub async fn screenshot(&self, file: &Path) {
        let client = self.client();
        // The window's height is the page's plus whatever the window itself takes.
        let height = client
            .execute(
                "return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight;",
                vec![],
            )
            .await
            .expect("page height")
            .as_u64()
            .unwrap_or(u64::from(HEIGHT));
        let height = u32::try_from(height).unwrap_or(HEIGHT).max(HEIGHT);
        client
            .set_window_size(WIDTH, height)
            .await
            .expect("grow window");
        let png = client.screenshot().await.expect("screenshot");
        client
            .set_window_size(WIDTH, HEIGHT)
            .await
            .expect("restore window");
        std::fs::write(file, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and the Chromium it started share a process group: end both, even when
        // a test failed before closing the session.
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

async fn wait_until_ready(webdriver: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(response) = client.get(format!("{webdriver}/status")).send().await {
            if response.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "chromedriver never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The element was replaced (the page changed) after it was found.
/// Whether the element was gone from the page by the time it was read. Chromium mostly says so
/// with the standard error, but when the document is replaced mid-command (a form's answer
/// arriving) it may answer with an unknown error from its inspector instead.
fn is_stale(error: &fantoccini::error::CmdError) -> bool {
    use fantoccini::error::{CmdError, ErrorStatus};
    match error {
        CmdError::Standard(wd) => {
            wd.error == ErrorStatus::StaleElementReference
                || (wd.error == ErrorStatus::UnknownError
                    && wd.message.contains("does not belong to the document"))
        }
        _ => false,
    }
}
