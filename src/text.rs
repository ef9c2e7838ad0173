//! Which characters are unsafe in text shown to a human, for every module that shows
//! untrusted text (the notifiers' renderers, the configuration's problem paths).

/// Characters that must never reach a one-line field: controls (CR, LF, tab, NUL, …), the
/// Unicode line/paragraph separators, zero-width and bidirectional formatting characters.
pub(crate) fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{2028}' | '\u{2029}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}
