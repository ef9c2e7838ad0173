//! Two versions of a policy compared: the grants added and removed, as lines a person reads
//! (`+ Allow iam:PassRole on *`), and the verdicts on what the new version newly allows.

use std::collections::{BTreeMap, BTreeSet};

use super::document::{glob, Document, Effect, Names, Statement};
use super::escalation::PATHS;
use super::{Analysis, Kind, Verdict, VerdictKind};

/// One side of the comparison, before or after the change.
#[derive(Debug, Clone)]
pub(crate) enum Side {
    /// No document: the policy did not exist (before) or no longer does (after).
    Nothing,
    /// A document, readable or not.
    Document(Result<Document, String>),
    /// Not known, and why.
    Unknown(String),
}

/// Lines shown per list at most; a longer list says how many were left out.
pub(crate) const MAX_LINES: usize = 40;

/// One grant of a statement: effect, one action (or the excluded ones), one resource (or
/// the excluded ones) or principal. Conditions are kept beside the key, so a changed
/// condition reads as a change, not as a removal and an addition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    effect: Effect,
    action: String,
    target: String,
}

#[derive(Debug, Default)]
struct Grant {
    display: String,
    conditions: BTreeSet<String>,
}

fn list(names: &[String]) -> String {
    names.join(", ")
}

fn actions_of(statement: &Statement) -> Vec<(String, String)> {
    match &statement.actions {
        Names::Only(actions) => actions
            .iter()
            .map(|a| (a.to_lowercase(), a.clone()))
            .collect(),
        Names::AllBut(actions) => {
            let shown = format!("every action except {}", list(actions));
            vec![(shown.to_lowercase(), shown)]
        }
    }
}

fn targets_of(statement: &Statement, kind: Kind) -> Vec<(String, String)> {
    if kind == Kind::Trust {
        let principals = statement.principals.iter().map(|(kind, value)| {
            let shown = match kind.as_str() {
                "*" => "anyone (*)".to_owned(),
                kind => format!("{kind} {value}"),
            };
            (format!("{kind}|{value}"), shown)
        });
        let mut targets: Vec<_> = principals.collect();
        if statement.not_principal {
            let everyone = format!(
                "everyone except {}",
                targets
                    .iter()
                    .map(|t| t.1.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            targets = vec![(everyone.clone(), everyone)];
        }
        return targets;
    }
    match &statement.resources {
        None => vec![("".into(), "no resource".into())],
        Some(Names::Only(resources)) => resources.iter().map(|r| (r.clone(), r.clone())).collect(),
        Some(Names::AllBut(resources)) => {
            let shown = format!("every resource except {}", list(resources));
            vec![(shown.clone(), shown)]
        }
    }
}

fn grants(document: &Document, kind: Kind) -> BTreeMap<Key, Grant> {
    let mut grants: BTreeMap<Key, Grant> = BTreeMap::new();
    for statement in &document.statements {
        for (action, action_shown) in actions_of(statement) {
            for (target, target_shown) in targets_of(statement, kind) {
                let display = match kind {
                    Kind::Trust => format!(
                        "{} {target_shown} to {action_shown}",
                        statement.effect.as_str()
                    ),
                    _ => format!(
                        "{} {action_shown} on {target_shown}",
                        statement.effect.as_str()
                    ),
                };
                let key = Key {
                    effect: statement.effect,
                    action: action.clone(),
                    target,
                };
                let grant = grants.entry(key).or_default();
                if grant.display.is_empty() {
                    grant.display = display;
                }
                grant.conditions.insert(statement.condition.clone());
            }
        }
    }
    grants
}

fn line(sign: char, grant: &Grant) -> String {
    let conditions: Vec<&str> = grant
        .conditions
        .iter()
        .filter(|c| !c.is_empty())
        .map(String::as_str)
        .collect();
    if conditions.is_empty() || grant.conditions.contains("") {
        format!("{sign} {}", grant.display)
    } else {
        format!("{sign} {} when {}", grant.display, conditions.join(" or "))
    }
}

fn capped(mut lines: Vec<String>) -> Vec<String> {
    if lines.len() > MAX_LINES {
        let more = lines.len() - MAX_LINES + 1;
        lines.truncate(MAX_LINES - 1);
        lines.push(format!("… and {more} more"));
    }
    lines
}

fn mentions_mfa(condition: &str) -> bool {
    condition.contains("aws:multifactorauth")
}

/// The grant lines added and removed from `old` to `new`, and whether MFA was dropped from a
/// grant that stays (or from a Deny that went).
fn diff(old: &Document, new: &Document, kind: Kind) -> (Vec<String>, Vec<String>, bool) {
    let (before, after) = (grants(old, kind), grants(new, kind));
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut mfa_dropped = false;
    for (key, grant) in &after {
        match before.get(key) {
            None => added.push(line('+', grant)),
            Some(previous) if previous.conditions != grant.conditions => {
                let target = if key.target.is_empty() || kind == Kind::Trust {
                    String::new()
                } else {
                    format!(" on {}", key.target)
                };
                let action = grant
                    .display
                    .split_once(' ')
                    .map(|(_, rest)| rest)
                    .unwrap_or(&grant.display);
                let subject = match kind {
                    Kind::Trust => action.to_owned(),
                    _ => action.split(" on ").next().unwrap_or(action).to_owned(),
                };
                added.push(format!("~ Condition changed on {subject}{target}"));
                let had_mfa = previous.conditions.iter().all(|c| mentions_mfa(c));
                let has_mfa = grant.conditions.iter().all(|c| mentions_mfa(c));
                if key.effect == Effect::Allow && had_mfa && !has_mfa {
                    mfa_dropped = true;
                }
            }
            Some(_) => {}
        }
    }
    for (key, grant) in &before {
        if !after.contains_key(key) {
            removed.push(line('-', grant));
            if key.effect == Effect::Deny && grant.conditions.iter().any(|c| mentions_mfa(c)) {
                mfa_dropped = true;
            }
        }
    }
    (capped(added), capped(removed), mfa_dropped)
}

/// IAM writes: a `NotAction` that leaves any of them allowed leaves the account's keys
/// to whoever holds it.
const IAM_WRITES: [&str; 4] = [
    "iam:AttachUserPolicy",
    "iam:PutRolePolicy",
    "iam:CreatePolicyVersion",
    "iam:CreateAccessKey",
];

fn broad_action(action: &str) -> bool {
    action == "*" || action.ends_with(":*") || action == "*:*"
}

/// Why `document` is admin-equivalent, and the source of the rule, when it is.
fn admin_shape(document: &Document) -> Option<(String, &'static str)> {
    for s in document
        .statements
        .iter()
        .filter(|s| s.effect == Effect::Allow)
    {
        let every_resource = s.resources.as_ref().is_some_and(Names::is_everything);
        match (&s.actions, &s.resources) {
            (Names::Only(actions), _) if every_resource => {
                if let Some(a) = actions.iter().find(|a| *a == "*" || *a == "*:*") {
                    return Some((
                        format!("Allow {a} on *: every action on every resource"),
                        "the AdministratorAccess managed policy is exactly this grant (AWS IAM User Guide)",
                    ));
                }
                if let Some(a) = actions.iter().find(|a| {
                    glob(a, "iam:PutUserPolicy", true)
                        && glob(a, "iam:AttachRolePolicy", true)
                        && glob(a, "iam:CreateAccessKey", true)
                }) {
                    return Some((
                        format!("Allow {a} on *: full control of IAM, so of every permission, one step later"),
                        "PMapper's admin test (nccgroup/PMapper, gathering.py update_admin_status); the IAMFullAccess managed policy",
                    ));
                }
            }
            (Names::AllBut(excluded), _)
                if every_resource || matches!(s.resources, Some(Names::AllBut(_))) =>
            {
                if let Some(write) = IAM_WRITES.iter().find(|w| s.actions.covers(w, true)) {
                    return Some((
                        format!(
                            "Allow with NotAction ({}) leaves IAM writes such as {write} allowed: everything but a few actions",
                            excluded.join(", ")
                        ),
                        "cfn_nag W15/W17 (Allow with NotAction); AWS IAM User Guide on NotAction with Allow",
                    ));
                }
            }
            (Names::Only(actions), Some(Names::AllBut(excluded))) => {
                if let Some(a) = actions.iter().find(|a| broad_action(a)) {
                    return Some((
                        format!(
                            "Allow {a} with NotResource ({}): every resource but the listed ones",
                            excluded.join(", ")
                        ),
                        "AWS IAM User Guide on NotResource with Allow; Tenable AC_AWS_0040",
                    ));
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether `document` grants every action of an escalation path (`others_only`: on a
/// resource other than the caller's own user).
fn grants_path(document: &Document, actions: &[&str], others_only: bool) -> bool {
    actions.iter().all(|action| {
        document.allowing(action).is_some_and(|s| {
            !others_only
                || match &s.resources {
                    Some(Names::Only(resources)) => {
                        !resources.iter().all(|r| r.contains("${aws:username}"))
                    }
                    _ => true,
                }
        })
    })
}

fn escalations(old: Option<&Document>, new: &Document) -> Vec<Verdict> {
    PATHS
        .iter()
        .filter(|path| grants_path(new, path.actions, path.others_only))
        .filter(|path| !old.is_some_and(|old| grants_path(old, path.actions, path.others_only)))
        .map(|path| Verdict {
            kind: VerdictKind::PrivilegeEscalation,
            reason: format!(
                "{} {}: it {}",
                if old.is_some() {
                    "newly grants"
                } else {
                    "grants"
                },
                path.actions.join(" + "),
                path.what
            ),
            source: path.source.to_owned(),
        })
        .collect()
}

/// The trust verdicts: principals an Allow newly admits that are anyone, another account,
/// or a federated provider with no audience or subject condition.
fn trust_widened(
    old: Option<&Document>,
    new: &Document,
    own_account: Option<&str>,
) -> Vec<Verdict> {
    let admitted = |document: &Document| -> BTreeSet<(String, String, bool)> {
        document
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Allow)
            .flat_map(|s| {
                let scoped = s.condition.contains(":aud\"") || s.condition.contains(":sub\"");
                let everyone = s
                    .not_principal
                    .then(|| ("*".to_owned(), "*".to_owned(), scoped));
                s.principals
                    .iter()
                    .filter(|_| !s.not_principal)
                    .map(move |(k, v)| (k.clone(), v.clone(), scoped))
                    .chain(everyone)
            })
            .collect()
    };
    let before = old.map(admitted).unwrap_or_default();
    let mut verdicts = Vec::new();
    for (kind, value, scoped) in admitted(new) {
        if before.contains(&(kind.clone(), value.clone(), scoped)) {
            continue;
        }
        let reason = match kind.as_str() {
            "*" => Some("the role now trusts anyone (Principal \"*\", or NotPrincipal with Allow)".to_owned()),
            "AWS" => match (super::account_in_arn(&value), own_account) {
                (Some(theirs), Some(ours)) if theirs != ours => {
                    Some(format!("the role now trusts another account, {theirs} ({value})"))
                }
                (Some(theirs), None) => Some(format!("the role now trusts account {theirs} ({value})")),
                _ => None,
            },
            "Federated" if !scoped => Some(format!(
                "the role now trusts the federated provider {value} with no audience or subject condition: any identity it issues may assume the role"
            )),
            _ => None,
        };
        if let Some(reason) = reason {
            verdicts.push(Verdict {
                kind: VerdictKind::TrustWidened,
                reason,
                source: "Cloudsplaining risk classes AssumableByAnyPrincipal and AssumableByCrossAccountPrincipal (salesforce/cloudsplaining); AWS IAM User Guide on OIDC trust conditions".to_owned(),
            });
        }
    }
    verdicts
}

/// Compares `before` with `after` for a document of `kind`; `own_account` is the account the
/// policy belongs to (trust in another account is a verdict).
pub(crate) fn compare(
    kind: Kind,
    before: &Side,
    after: &Side,
    own_account: Option<&str>,
) -> Analysis {
    let mut analysis = Analysis::default();
    let empty = Document::default();
    let new = match after {
        Side::Document(Err(why)) => {
            analysis.notes.push(format!(
                "unreadable policy: {why}; nothing could be analysed"
            ));
            return analysis;
        }
        Side::Unknown(why) => {
            analysis
                .notes
                .push(format!("the new version is unknown: {why}"));
            return analysis;
        }
        Side::Nothing => &empty,
        Side::Document(Ok(d)) => d,
    };
    let old = match before {
        Side::Nothing => Some(&empty),
        Side::Document(Ok(d)) => Some(d),
        Side::Document(Err(why)) => {
            analysis.notes.push(format!(
                "previous version unreadable ({why}): the new document is analysed alone"
            ));
            None
        }
        Side::Unknown(why) => {
            analysis.notes.push(format!(
                "previous version unknown ({why}): the new document is analysed alone"
            ));
            None
        }
    };
    analysis.previous_known = old.is_some();
    let (added, removed, mfa_dropped) = diff(old.unwrap_or(&empty), new, kind);
    analysis.added = added;
    analysis.removed = if old.is_some() { removed } else { Vec::new() };
    if mfa_dropped && old.is_some() {
        analysis.verdicts.push(Verdict {
            kind: VerdictKind::MfaConditionRemoved,
            reason: "a grant that required MFA (aws:MultiFactorAuthPresent/Age) no longer does"
                .to_owned(),
            source: "AWS IAM User Guide, \"Configuring MFA-protected API access\"".to_owned(),
        });
    }
    match kind {
        Kind::Identity => {
            let newly_admin = admin_shape(new)
                .filter(|_| old.is_none_or(|old| admin_shape(old).is_none()));
            if let Some((reason, source)) = newly_admin {
                analysis.verdicts.push(Verdict {
                    kind: VerdictKind::AdminEquivalent,
                    reason,
                    source: source.to_owned(),
                });
            } else {
                analysis.verdicts.extend(escalations(old, new));
            }
        }
        Kind::Trust => analysis.verdicts.extend(trust_widened(old, new, own_account)),
        Kind::Boundary => analysis.notes.push(
            "a permissions boundary grants nothing itself: it caps what the entity's policies can grant"
                .to_owned(),
        ),
    }
    analysis
}
