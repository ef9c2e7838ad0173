//! The checks of `checkov` (the IaC scanner security teams run; `scripts/test` runs it on
//! `deploy/iamwatchd.template.json` and `deploy/iamwatchd-member-role.template.json`) that a
//! resource does not meet on purpose. Each skip goes in the resource's `Metadata.checkov.skip`
//! with the reason a reviewer would want; a skip without a reason is a failure the template
//! hides, so the test below refuses it.

use serde_json::{json, Value};

/// One entry of `Metadata.checkov.skip`: the check's id and why the resource does not meet it.
pub(super) fn skip(id: &str, comment: &str) -> Value {
    json!({ "id": id, "comment": comment })
}

#[cfg(test)]
mod tests {
    use crate::stack::template::{member_role_template, template};

    /// Every skip of both templates names a checkov check and gives a reason of at least a
    /// sentence (the member role needs none).
    #[test]
    fn every_skip_has_a_check_id_and_a_reason() {
        assert!(skips_of(&template()) > 0);
        assert_eq!(skips_of(&member_role_template()), 0);
    }

    fn skips_of(template: &serde_json::Value) -> usize {
        let mut skips = 0;
        for (id, resource) in template["Resources"].as_object().unwrap() {
            for entry in resource["Metadata"]["checkov"]["skip"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let check = entry["id"].as_str().unwrap_or_default();
                let comment = entry["comment"].as_str().unwrap_or_default();
                assert!(check.starts_with("CKV_AWS_"), "{id}: {entry}");
                assert!(
                    comment.len() >= 60,
                    "{id} {check}: give the reason, not a label"
                );
                skips += 1;
            }
        }
        skips
    }
}
