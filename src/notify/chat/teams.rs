//! A Microsoft Teams message: one Adaptive Card (version 1.4, what Teams renders everywhere)
//! in the envelope a Workflows "post to a channel when a webhook request is received" flow
//! takes. Workflows accept Adaptive Cards only, not the retired connectors' MessageCard.
//!
//! Teams refuses a message over 28 KB: the card is rendered with values cut harder until its
//! JSON fits in [`MAX_BYTES`], and anything still too long is counted in a closing note.
//!
//! Adaptive Cards read a subset of Markdown in `TextBlock` text and in facts, so untrusted
//! values have every Markdown character escaped with a backslash: `[x](https://evil)` shows
//! as written and links nowhere; `**`, `_`, `#` and list markers stay literal.

use serde_json::{json, Value};

use super::{cut, fit};
use crate::notify::Message;

/// Below Teams's 28 KB (28,672 bytes), leaving room for the platform's own envelope.
pub(crate) const MAX_BYTES: usize = 26 * 1024;

/// Value sizes tried, largest first, until the card fits.
const VALUE_SIZES: &[usize] = &[4_000, 1_500, 500, 150];

/// Escapes the characters Adaptive Cards' Markdown gives a meaning to.
pub(crate) fn markdown_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*'
                | '_'
                | '['
                | ']'
                | '('
                | ')'
                | '#'
                | '>'
                | '<'
                | '`'
                | '~'
                | '-'
                | '+'
                | '!'
                | '|'
        ) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn text_block(text: String) -> Value {
    json!({"type": "TextBlock", "text": text, "wrap": true})
}

/// The webhook payload for `message`.
pub fn payload(message: &Message) -> Value {
    fit(MAX_BYTES, VALUE_SIZES, |size| card(message, size))
}

fn card(message: &Message, value_max: usize) -> Value {
    let colour = match message.severity.as_str() {
        "CRITICAL" | "HIGH" => "Attention",
        "MEDIUM" => "Warning",
        _ => "Default",
    };
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": markdown_escape(&cut(message.title(), 300)),
        "size": "Large",
        "weight": "Bolder",
        "color": colour,
        "wrap": true,
    })];
    for section in &message.sections {
        body.push(json!({
            "type": "TextBlock",
            "text": markdown_escape(&section.title),
            "weight": "Bolder",
            "separator": true,
            "wrap": true,
        }));
        let mut facts = Vec::new();
        for field in &section.fields {
            let value = markdown_escape(&cut(&field.value, value_max));
            if field.multiline {
                if !facts.is_empty() {
                    body.push(json!({"type": "FactSet", "facts": std::mem::take(&mut facts)}));
                }
                body.push(text_block(format!("{}:", markdown_escape(&field.label))));
                body.push(json!({
                    "type": "TextBlock", "text": value, "wrap": true, "fontType": "Monospace",
                }));
            } else {
                facts.push(json!({"title": markdown_escape(&field.label), "value": value}));
            }
        }
        if !facts.is_empty() {
            body.push(json!({"type": "FactSet", "facts": facts}));
        }
    }
    if message.sections.is_empty() {
        body.push(text_block(markdown_escape(&cut(&message.text, value_max))));
    }
    if value_max == *VALUE_SIZES.last().expect("sizes") {
        // The smallest size: if even this is too big, keep the head and say so.
        let mut dropped = 0;
        while serde_json::to_vec(&body).map_or(0, |b| b.len()) > MAX_BYTES - 2_048 && body.len() > 2
        {
            body.pop();
            dropped += 1;
        }
        if dropped > 0 {
            body.push(text_block(format!(
                "{dropped} more parts did not fit in a Teams message: the mail and the \
                 CloudTrail console have everything (event ID {})",
                markdown_escape(&message.event_id)
            )));
        }
    }
    let mut content = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    });
    if let Some(link) = message.usable_link() {
        content["actions"] = json!([{
            "type": "Action.OpenUrl",
            "title": "Open in the CloudTrail console",
            "url": link,
        }]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": content,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::chat::testing::hostile_message;

    #[test]
    fn markdown_in_values_is_inert() {
        assert_eq!(
            markdown_escape("[x](https://evil)"),
            "\\[x\\]\\(https://evil\\)"
        );
        let payload = payload(&hostile_message(1)).to_string();
        assert!(!payload.contains("[click](https://evil"), "{payload}");
    }

    #[test]
    fn a_huge_console_link_is_left_out_so_the_card_stays_under_the_size_limit() {
        let message = Message {
            link: Some(format!("https://x/{}", "x".repeat(70_000))),
            ..Message::for_test("HIGH", "iam-change", "CreateUser")
        };
        let payload = payload(&message);
        assert!(serde_json::to_vec(&payload).unwrap().len() <= MAX_BYTES);
        assert!(payload["attachments"][0]["content"]
            .get("actions")
            .is_none());
    }

    #[test]
    fn a_huge_message_is_one_card_under_the_size_limit() {
        let payload = payload(&hostile_message(400));
        let bytes = serde_json::to_vec(&payload).unwrap().len();
        assert!(bytes <= MAX_BYTES, "{bytes}");
        assert_eq!(payload["type"], "message");
        let card = &payload["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert_eq!(card["content"]["version"], "1.4");
    }
}
