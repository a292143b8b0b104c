//! Labels and label selectors: `matchLabels` plus `matchExpressions`
//! (In, NotIn, Exists, DoesNotExist), and the kubectl `-l` string form
//! (`app=web,tier!=db,env in (a,b),!legacy`).

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Key/value labels on an object.
pub type Labels = BTreeMap<String, String>;

/// How a selector requirement compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum SelectorOperator {
    In,
    NotIn,
    #[default]
    Exists,
    DoesNotExist,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: SelectorOperator,
    #[serde(default)]
    pub values: Vec<String>,
}

/// A label query. The empty selector matches every object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LabelSelector {
    pub match_labels: Labels,
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// A selector string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector {input:?} at byte {at}: {reason}")]
pub struct SelectorParseError {
    pub input: String,
    pub at: usize,
    pub reason: &'static str,
}

impl LabelSelectorRequirement {
    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            SelectorOperator::In => value.is_some_and(|v| self.values.contains(v)),
            SelectorOperator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            SelectorOperator::Exists => value.is_some(),
            SelectorOperator::DoesNotExist => value.is_none(),
        }
    }
}

impl LabelSelector {
    /// A selector of equality terms only.
    pub fn from_labels(labels: Labels) -> LabelSelector {
        LabelSelector {
            match_labels: labels,
            match_expressions: Vec::new(),
        }
    }

    /// True when the selector has no terms (it then matches everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Whether `labels` satisfy every term.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// Parse the kubectl `-l` syntax: comma-separated terms `k=v`, `k==v`,
    /// `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`.
    pub fn parse(input: &str) -> Result<LabelSelector, SelectorParseError> {
        SelectorParser { input, pos: 0 }.parse()
    }
}

struct SelectorParser<'a> {
    input: &'a str,
    pos: usize,
}

impl SelectorParser<'_> {
    fn err(&self, reason: &'static str) -> SelectorParseError {
        SelectorParseError {
            input: self.input.into(),
            at: self.pos,
            reason,
        }
    }

    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.input.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    /// A label key or value: letters, digits, `-`, `_`, `.`, `/`.
    fn word(&mut self) -> &str {
        self.skip_ws();
        let start = self.pos;
        let len = self
            .rest()
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || b"-_./".contains(b))
            .count();
        self.pos += len;
        &self.input[start..self.pos]
    }

    fn key(&mut self) -> Result<String, SelectorParseError> {
        let k = self.word();
        if k.is_empty() {
            return Err(self.err("expected a label key"));
        }
        Ok(k.to_string())
    }

    fn value_set(&mut self) -> Result<Vec<String>, SelectorParseError> {
        if !self.eat("(") {
            return Err(self.err("expected '(' after in/notin"));
        }
        let mut values = Vec::new();
        loop {
            values.push(self.word().to_string());
            if self.eat(")") {
                return Ok(values);
            }
            if !self.eat(",") {
                return Err(self.err("expected ',' or ')' in value set"));
            }
        }
    }

    fn parse(mut self) -> Result<LabelSelector, SelectorParseError> {
        let mut sel = LabelSelector::default();
        self.skip_ws();
        if self.rest().is_empty() {
            return Ok(sel);
        }
        loop {
            if self.eat("!") {
                let key = self.key()?;
                sel.match_expressions.push(requirement(
                    key,
                    SelectorOperator::DoesNotExist,
                    Vec::new(),
                ));
            } else {
                let key = self.key()?;
                if self.eat("!=") {
                    let v = self.word().to_string();
                    sel.match_expressions.push(requirement(
                        key,
                        SelectorOperator::NotIn,
                        alloc::vec![v],
                    ));
                } else if self.eat("==") || self.eat("=") {
                    let v = self.word().to_string();
                    sel.match_labels.insert(key, v);
                } else if self.eat_keyword("notin") {
                    let vs = self.value_set()?;
                    sel.match_expressions
                        .push(requirement(key, SelectorOperator::NotIn, vs));
                } else if self.eat_keyword("in") {
                    let vs = self.value_set()?;
                    sel.match_expressions
                        .push(requirement(key, SelectorOperator::In, vs));
                } else {
                    sel.match_expressions.push(requirement(
                        key,
                        SelectorOperator::Exists,
                        Vec::new(),
                    ));
                }
            }
            self.skip_ws();
            if self.rest().is_empty() {
                return Ok(sel);
            }
            if !self.eat(",") {
                return Err(self.err("expected ',' between terms"));
            }
        }
    }

    /// A keyword followed by white space or `(`.
    fn eat_keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        let rest = self.rest();
        let follows = rest[kw.len().min(rest.len())..].chars().next();
        if rest.starts_with(kw) && matches!(follows, Some(c) if c.is_whitespace() || c == '(') {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }
}

fn requirement(
    key: String,
    operator: SelectorOperator,
    values: Vec<String>,
) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key,
        operator,
        values,
    }
}

impl fmt::Display for LabelSelector {
    /// The kubectl string form; `LabelSelector::parse` reads it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let s = if first { "" } else { "," };
            first = false;
            f.write_str(s)
        };
        for (k, v) in &self.match_labels {
            sep(f)?;
            write!(f, "{k}={v}")?;
        }
        for r in &self.match_expressions {
            sep(f)?;
            match r.operator {
                SelectorOperator::Exists => write!(f, "{}", r.key)?,
                SelectorOperator::DoesNotExist => write!(f, "!{}", r.key)?,
                SelectorOperator::In | SelectorOperator::NotIn => {
                    let op = if r.operator == SelectorOperator::In {
                        "in"
                    } else {
                        "notin"
                    };
                    write!(f, "{} {op} (", r.key)?;
                    for (i, v) in r.values.iter().enumerate() {
                        write!(f, "{}{v}", if i == 0 { "" } else { "," })?;
                    }
                    f.write_str(")")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selector_matching_table() {
        let web = labels(&[("app", "web"), ("tier", "front"), ("env", "prod")]);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app!=web", false),
            ("missing!=x", true),
            ("env in (prod,staging)", true),
            ("env in (dev)", false),
            ("env notin (dev, test)", true),
            ("env notin (prod)", false),
            ("missing notin (prod)", true),
            ("tier", true),
            ("missing", false),
            ("!missing", true),
            ("!tier", false),
            ("app=web,tier=front,env in (prod)", true),
            ("app=web,tier=back", false),
        ];
        for (text, want) in cases {
            let sel = LabelSelector::parse(text).unwrap();
            assert_eq!(sel.matches(&web), want, "{text:?}");
        }
    }

    #[test]
    fn parse_errors_point_at_the_problem() {
        for bad in [
            "=web",
            "app=web,",
            "env in prod",
            "env in (a",
            "app=web tier=x",
            "!",
            "a,,b",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad:?} parsed");
        }
        let e = LabelSelector::parse("env in prod").unwrap_err();
        assert_eq!(e.at, 7, "points at the missing parenthesis");
    }

    #[test]
    fn display_parses_back() {
        let text = "app=web,tier=front,env in (a,b),x notin (c),y,!z";
        let sel = LabelSelector::parse(text).unwrap();
        assert_eq!(LabelSelector::parse(&sel.to_string()).unwrap(), sel);
    }

    #[test]
    fn expressions_in_manifest_form() {
        let sel: LabelSelector = serde_json::from_str(
            r#"{"matchLabels":{"app":"web"},"matchExpressions":[{"key":"env","operator":"In","values":["prod"]}]}"#,
        )
        .unwrap();
        assert!(sel.matches(&labels(&[("app", "web"), ("env", "prod")])));
        assert!(!sel.matches(&labels(&[("app", "web")])));
    }
}
