//! A Slack message in Block Kit: a header, one section per part of the alert, the console
//! link as a button, and a fallback `text` for notifications.
//!
//! Limits kept (Slack's Block Kit reference): at most 50 blocks, a header of at most 150
//! characters of plain text, a section's text at most 3,000 characters, at most 10 fields of
//! at most 2,000 characters each, a button's text at most 75, its URL at most 3,000; and all
//! block text together well under the ~12,000 characters past which Slack answers
//! `msg_blocks_too_long`. What does not fit is cut with a visible marker.
//!
//! Untrusted values (role names, tag values, policy text, the event ID) are `plain_text`
//! objects, which Slack shows as they are: no `<!channel>`, `<https://evil|click>`, `@here` or
//! `*bold*` in a value does anything. The only `mrkdwn` is our own section titles and the
//! fallback text, escaped as Slack documents (`&`, `<`, `>`).

use serde_json::{json, Value};

use super::cut;
use crate::notify::Message;

const MAX_BLOCKS: usize = 50;
const HEADER_MAX_CHARS: usize = 150;
const SECTION_TEXT_MAX_CHARS: usize = 3_000;
const FIELDS_PER_SECTION: usize = 10;
const FIELD_MAX_CHARS: usize = 2_000;
/// The budget for the text of all blocks together, below Slack's observed ~12,000.
const TOTAL_TEXT_MAX_CHARS: usize = 11_000;
/// The fallback `text` (notifications, clients without blocks); Slack's own cut is 40,000.
const FALLBACK_MAX_CHARS: usize = 3_000;

/// Escapes text for `mrkdwn` as Slack documents: `&`, `<` and `>`.
pub(crate) fn mrkdwn_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn plain(text: &str) -> Value {
    json!({"type": "plain_text", "text": text, "emoji": false})
}

/// The header when the message has no title (a row stored without one): Slack refuses a text
/// object without text.
const UNTITLED: &str = "iamwatchd alert";

/// The webhook payload for `message`: fields are taken in order while the total budget
/// lasts, and the rest is counted in a closing note.
pub fn payload(message: &Message) -> Value {
    let title = Some(message.title())
        .filter(|t| !t.trim().is_empty())
        .unwrap_or(UNTITLED);
    let mut blocks = vec![json!({
        "type": "header",
        "text": plain(&cut(title, HEADER_MAX_CHARS)),
    })];
    let mut budget = TOTAL_TEXT_MAX_CHARS.saturating_sub(HEADER_MAX_CHARS);
    let mut left_out = 0usize;
    // Room for the closing context and the button.
    let room = MAX_BLOCKS - 3;
    for section in &message.sections {
        let title = format!("*{}*", mrkdwn_escape(&section.title));
        let mut fields = Vec::new();
        let flush = |fields: &mut Vec<Value>, blocks: &mut Vec<Value>, title: &str| {
            if !fields.is_empty() {
                blocks.push(json!({
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": title},
                    "fields": std::mem::take(fields),
                }));
            }
        };
        for field in &section.fields {
            let (limit, text) = if field.multiline {
                (
                    SECTION_TEXT_MAX_CHARS,
                    format!("{}:\n{}", field.label, field.value),
                )
            } else {
                (FIELD_MAX_CHARS, format!("{}: {}", field.label, field.value))
            };
            let text = cut(&text, limit.min(budget));
            let cost = text.chars().count() + title.chars().count();
            if budget < cost || blocks.len() >= room || budget < 64 {
                left_out += 1;
                continue;
            }
            budget -= cost;
            if field.multiline {
                flush(&mut fields, &mut blocks, &title);
                blocks.push(json!({"type": "section", "text": plain(&text)}));
            } else {
                fields.push(plain(&text));
                if fields.len() == FIELDS_PER_SECTION {
                    flush(&mut fields, &mut blocks, &title);
                }
            }
        }
        flush(&mut fields, &mut blocks, &title);
    }
    if message.sections.is_empty() && !message.text.trim().is_empty() {
        // A row queued by an older version: the text body is all there is.
        blocks.push(json!({
            "type": "section",
            "text": plain(&cut(&message.text, SECTION_TEXT_MAX_CHARS)),
        }));
    }
    if left_out > 0 {
        blocks.push(json!({
            "type": "context",
            // Plain text: the event ID is the record's, and `*`, `_` or `~` in it would
            // format in mrkdwn.
            "elements": [plain(&cut(&format!(
                "{left_out} more field{} did not fit in a Slack message: the mail and the \
                 CloudTrail console have everything (event ID {})",
                if left_out == 1 { "" } else { "s" },
                message.event_id
            ), SECTION_TEXT_MAX_CHARS))],
        }));
    }
    if let Some(link) = message.usable_link() {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": plain("Open in the CloudTrail console"),
                "url": link,
            }],
        }));
    }
    json!({
        "text": mrkdwn_escape(&cut(title, FALLBACK_MAX_CHARS)),
        "blocks": blocks,
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::chat::testing::{hostile_message, texts};

    #[test]
    fn untrusted_values_are_plain_text_and_mrkdwn_is_escaped() {
        let payload = payload(&hostile_message(1));
        let fallback = payload["text"].as_str().unwrap();
        assert!(
            !fallback.contains('<') && !fallback.contains('>'),
            "{fallback}"
        );
        for block in payload["blocks"].as_array().unwrap() {
            for text in texts(block) {
                if text["type"] == "mrkdwn" {
                    let t = text["text"].as_str().unwrap();
                    assert!(!t.contains("<!") && !t.contains("<http"), "{t}");
                } else {
                    assert_eq!(text["type"], "plain_text");
                    assert_eq!(text["emoji"], false);
                }
            }
        }
    }

    #[test]
    fn a_message_without_title_or_text_has_no_empty_text_object_which_slack_refuses() {
        let message = Message {
            subject: String::new(),
            text: " ".to_owned(),
            ..Message::for_test("HIGH", "iam-change", "CreateUser")
        };
        let payload = payload(&message);
        assert_eq!(payload["blocks"][0]["text"]["text"], UNTITLED);
        assert_eq!(payload["text"], UNTITLED);
        for block in payload["blocks"].as_array().unwrap() {
            for text in texts(block) {
                assert!(!text["text"].as_str().unwrap().trim().is_empty(), "{block}");
            }
        }
    }

    #[test]
    fn the_did_not_fit_note_shows_the_event_id_as_plain_text_so_its_mrkdwn_is_inert() {
        let mut message = hostile_message(400);
        message.event_id = "*bold* _it_ ~strike~ `code`".to_owned();
        let payload = payload(&message);
        let note = payload["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "context")
            .expect("the note");
        assert_eq!(note["elements"][0]["type"], "plain_text");
        let text = note["elements"][0]["text"].as_str().unwrap();
        assert!(
            text.contains("(event ID *bold* _it_ ~strike~ `code`)"),
            "{text}"
        );
    }

    #[test]
    fn a_huge_message_stays_within_every_block_kit_limit() {
        let payload = payload(&hostile_message(400));
        let blocks = payload["blocks"].as_array().unwrap();
        assert!(blocks.len() <= MAX_BLOCKS, "{}", blocks.len());
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(header.chars().count() <= HEADER_MAX_CHARS);
        let mut total = 0;
        for block in blocks {
            if let Some(fields) = block["fields"].as_array() {
                assert!(fields.len() <= FIELDS_PER_SECTION);
                for f in fields {
                    assert!(f["text"].as_str().unwrap().chars().count() <= FIELD_MAX_CHARS);
                }
            }
            if block["type"] == "section" {
                let t = block["text"]["text"].as_str().unwrap();
                assert!(t.chars().count() <= SECTION_TEXT_MAX_CHARS);
            }
            total += texts(block)
                .iter()
                .map(|t| t["text"].as_str().unwrap().chars().count())
                .sum::<usize>();
        }
        assert!(total <= 12_000, "{total}");
        let last_text = blocks
            .iter()
            .rev()
            .find(|b| b["type"] == "context")
            .unwrap();
        assert!(last_text.to_string().contains("did not fit"));
    }
}
