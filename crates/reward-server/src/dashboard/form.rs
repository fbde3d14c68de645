//! Reading `application/x-www-form-urlencoded` bodies. Repeated names are kept in order (one
//! checkbox per event type sends `events` several times), which a map would lose.

pub struct FormFields(Vec<(String, String)>);

impl FormFields {
    pub fn parse(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value sent under `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first value under `name`, or "" when absent: what an empty input sends.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// Every value sent under `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_and_encoding() {
        let form = FormFields::parse(
            b"name=Order+feed%21&events=a.b&events=c.d&url=https%3A%2F%2Fx.test%2F",
        );
        assert_eq!(form.get("name"), Some("Order feed!"));
        assert_eq!(form.all("events"), vec!["a.b", "c.d"]);
        assert_eq!(form.text("url"), "https://x.test/");
        assert_eq!(form.text("missing"), "");
    }
}
