//! The alarm-path stack: its names and limits ([`names`]), its CloudFormation template
//! ([`template`], printed by `iamwatchd template`), and `iamwatchd deploy` ([`deploy`]), which
//! creates, updates and deletes it through change sets.

pub mod deploy;
pub mod names;
pub mod template;
