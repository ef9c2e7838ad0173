//! Table-driven tests over policy pairs, and the property that a policy compared with itself
//! changes nothing.

use serde_json::{json, Value};

use super::compare::{compare, Side};
use super::{side_of, Kind, VerdictKind};

use VerdictKind::{
    AdminEquivalent as Admin, MfaConditionRemoved as Mfa, PrivilegeEscalation as Esc,
    TrustWidened as Trust,
};

const UNKNOWN: &str = "?";
const NOTHING: &str = "";

fn side(text: &str) -> Side {
    match text {
        NOTHING => Side::Nothing,
        UNKNOWN => Side::Unknown("not recorded".into()),
        text => side_of(&Value::String(text.to_owned())),
    }
}

/// `{"Statement": [...]}` from statements written as JSON.
fn doc(statements: Value) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

fn allow(action: Value, resource: Value) -> Value {
    json!({"Effect": "Allow", "Action": action, "Resource": resource})
}

fn trust(principal: Value) -> Value {
    json!({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})
}

struct Case {
    name: &'static str,
    kind: Kind,
    before: String,
    after: String,
    verdicts: &'static [VerdictKind],
    added: &'static [&'static str],
    removed: &'static [&'static str],
    note: &'static str,
}

fn case(
    name: &'static str,
    before: String,
    after: String,
    verdicts: &'static [VerdictKind],
) -> Case {
    Case {
        name,
        kind: Kind::Identity,
        before,
        after,
        verdicts,
        added: &[],
        removed: &[],
        note: "",
    }
}

impl Case {
    fn trust(mut self) -> Case {
        self.kind = Kind::Trust;
        self
    }
    fn added(mut self, lines: &'static [&'static str]) -> Case {
        self.added = lines;
        self
    }
    fn removed(mut self, lines: &'static [&'static str]) -> Case {
        self.removed = lines;
        self
    }
    fn note(mut self, note: &'static str) -> Case {
        self.note = note;
        self
    }
}

fn s(value: &str) -> String {
    value.to_owned()
}

fn cases() -> Vec<Case> {
    let read = doc(json!([allow(
        json!("s3:GetObject"),
        json!("arn:aws:s3:::logs/*")
    )]));
    let enc = "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22iam%3APassRole%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
    let mfa = |action: &str| {
        doc(
            json!([{"Effect": "Allow", "Action": action, "Resource": "*",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]),
        )
    };
    let force_mfa = doc(json!([
        allow(json!("s3:*"), json!("*")),
        {"Effect": "Deny", "NotAction": "iam:ChangePassword", "Resource": "*",
         "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}
    ]));
    let own = trust(json!({"AWS": "arn:aws:iam::111122223333:root"}));
    vec![
        // Admin-equivalent shapes.
        case("star on star", s(NOTHING), doc(json!([allow(json!("*"), json!("*"))])), &[Admin]).added(&["+ Allow * on *"]),
        case("star-colon-star on star", s(NOTHING), doc(json!([allow(json!("*:*"), json!("*"))])), &[Admin]),
        case("iam:* on star", s(NOTHING), doc(json!([allow(json!("iam:*"), json!("*"))])), &[Admin]),
        case("IAM:* in upper case", s(NOTHING), doc(json!([allow(json!("IAM:*"), json!(["*"]))])), &[Admin]),
        case("star in a list", s(NOTHING), doc(json!([allow(json!(["s3:GetObject", "*"]), json!("*"))])), &[Admin]),
        case("single statement object", s(NOTHING), json!({"Statement": allow(json!("*"), json!("*"))}).to_string(), &[Admin]),
        case("NotAction leaving IAM", s(NOTHING), doc(json!([{"Effect": "Allow", "NotAction": "s3:DeleteBucket", "Resource": "*"}])), &[Admin]).added(&["+ Allow every action except s3:DeleteBucket on *"]),
        case("NotAction excluding IAM is power user, not admin", s(NOTHING), doc(json!([{"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}])), &[Esc]),
        case("NotResource with a broad action", s(NOTHING), doc(json!([{"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:s3:::secret/*"}])), &[Admin]).added(&["+ Allow * on every resource except arn:aws:s3:::secret/*"]),
        case("NotResource with a service wildcard", s(NOTHING), doc(json!([{"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::x"}])), &[Admin]),
        case("NotResource with a narrow action", s(NOTHING), doc(json!([{"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::x"}])), &[]),
        case("star on one bucket is not admin", s(NOTHING), doc(json!([allow(json!("*"), json!("arn:aws:s3:::b/*"))])), &[Esc]),
        case("already admin before", doc(json!([allow(json!("*"), json!("*"))])), doc(json!([allow(json!("*"), json!("*")), allow(json!("s3:GetObject"), json!("*"))])), &[]).added(&["+ Allow s3:GetObject on *"]),
        case("admin with previous unknown", s(UNKNOWN), doc(json!([allow(json!("*"), json!("*"))])), &[Admin]).note("previous version unknown"),
        case("denied admin is not admin", s(NOTHING), doc(json!([{"Effect": "Deny", "Action": "*", "Resource": "*"}])), &[]).added(&["+ Deny * on *"]),
        case("s3:* on star is no admin", s(NOTHING), doc(json!([allow(json!("s3:*"), json!("*"))])), &[]),
        // Privilege escalation through each path, globs and NotAction.
        case("CreatePolicyVersion", s(NOTHING), doc(json!([allow(json!("iam:CreatePolicyVersion"), json!("*"))])), &[Esc]),
        case("SetDefaultPolicyVersion", s(NOTHING), doc(json!([allow(json!("iam:SetDefaultPolicyVersion"), json!("*"))])), &[Esc]),
        case("AttachUserPolicy", s(NOTHING), doc(json!([allow(json!("iam:AttachUserPolicy"), json!("*"))])), &[Esc]),
        case("AttachGroupPolicy", s(NOTHING), doc(json!([allow(json!("iam:AttachGroupPolicy"), json!("*"))])), &[Esc]),
        case("AttachRolePolicy", s(NOTHING), doc(json!([allow(json!("iam:AttachRolePolicy"), json!("*"))])), &[Esc]),
        case("Attach* glob", s(NOTHING), doc(json!([allow(json!("iam:Attach*"), json!("*"))])), &[Esc]),
        case("Put*Policy glob", s(NOTHING), doc(json!([allow(json!("iam:Put*Policy"), json!("*"))])), &[Esc]),
        case("PutRolePolicy lower case", s(NOTHING), doc(json!([allow(json!("iam:putrolepolicy"), json!("arn:aws:iam::1:role/x"))])), &[Esc]),
        case("question-mark glob", s(NOTHING), doc(json!([allow(json!("iam:PutUse?Policy"), json!("*"))])), &[Esc]),
        case("AddUserToGroup", s(NOTHING), doc(json!([allow(json!("iam:AddUserToGroup"), json!("*"))])), &[Esc]),
        case("UpdateAssumeRolePolicy", s(NOTHING), doc(json!([allow(json!("iam:UpdateAssumeRolePolicy"), json!("*"))])), &[Esc]),
        case("CreateAccessKey on other users", s(NOTHING), doc(json!([allow(json!("iam:CreateAccessKey"), json!("*"))])), &[Esc]),
        case("CreateAccessKey on oneself only", s(NOTHING), doc(json!([allow(json!("iam:CreateAccessKey"), json!("arn:aws:iam::*:user/${aws:username}"))])), &[]),
        case("CreateLoginProfile", s(NOTHING), doc(json!([allow(json!("iam:CreateLoginProfile"), json!("*"))])), &[Esc]),
        case("UpdateLoginProfile", s(NOTHING), doc(json!([allow(json!("iam:UpdateLoginProfile"), json!("*"))])), &[Esc]),
        case("PassRole alone is no path", s(NOTHING), s(enc), &[]).added(&["+ Allow iam:PassRole on *"]),
        case("PassRole and RunInstances", s(NOTHING), doc(json!([allow(json!(["iam:PassRole", "ec2:RunInstances"]), json!("*"))])), &[Esc]),
        case("PassRole and ec2:*", s(NOTHING), doc(json!([allow(json!("iam:PassRole"), json!("*")), allow(json!("ec2:*"), json!("*"))])), &[Esc]),
        case("PassRole and Lambda create and invoke", s(NOTHING), doc(json!([allow(json!(["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"]), json!("*"))])), &[Esc]),
        case("Lambda create without invoke", s(NOTHING), doc(json!([allow(json!(["iam:PassRole", "lambda:CreateFunction"]), json!("*"))])), &[]),
        case("lambda:* with PassRole", s(NOTHING), doc(json!([allow(json!(["iam:PassRole", "lambda:*"]), json!("*"))])), &[Esc]),
        case("PassRole and CreateStack", s(NOTHING), doc(json!([allow(json!(["iam:PassRole", "cloudformation:CreateStack"]), json!("*"))])), &[Esc]),
        case("PassRole and Glue endpoint", s(NOTHING), doc(json!([allow(json!(["iam:PassRole", "glue:CreateDevEndpoint"]), json!("*"))])), &[Esc]),
        case("CodeBuild", s(NOTHING), doc(json!([allow(json!(["iam:PassRole", "codebuild:CreateProject", "codebuild:StartBuild"]), json!("*"))])), &[Esc]),
        case("ECS", s(NOTHING), doc(json!([allow(json!(["iam:PassRole", "ecs:RegisterTaskDefinition", "ecs:RunTask"]), json!("*"))])), &[Esc]),
        case("SageMaker notebook", s(NOTHING), doc(json!([allow(json!(["iam:PassRole", "sagemaker:CreateNotebookInstance"]), json!("*"))])), &[Esc]),
        case("Data Pipeline", s(NOTHING), doc(json!([allow(json!(["iam:PassRole", "datapipeline:CreatePipeline", "datapipeline:PutPipelineDefinition"]), json!("*"))])), &[Esc]),
        case("ssm:SendCommand", s(NOTHING), doc(json!([allow(json!("ssm:SendCommand"), json!("*"))])), &[Esc]),
        case("ssm:Start*", s(NOTHING), doc(json!([allow(json!("ssm:Start*"), json!("*"))])), &[Esc]),
        case("UpdateFunctionCode", s(NOTHING), doc(json!([allow(json!("lambda:UpdateFunctionCode"), json!("*"))])), &[Esc]),
        case("SendSSHPublicKey", s(NOTHING), doc(json!([allow(json!("ec2-instance-connect:SendSSHPublicKey"), json!("*"))])), &[Esc]),
        case("service wildcard *:Put*", s(NOTHING), doc(json!([allow(json!("*:PutRolePolicy"), json!("*"))])), &[Esc]),
        case("path held before is not new", doc(json!([allow(json!("iam:PassRole"), json!("*")), allow(json!("ec2:RunInstances"), json!("*"))])), doc(json!([allow(json!(["iam:PassRole", "ec2:RunInstances", "s3:GetObject"]), json!("*"))])), &[]).added(&["+ Allow s3:GetObject on *"]),
        case("second half of a combination added", doc(json!([allow(json!("iam:PassRole"), json!("*"))])), doc(json!([allow(json!(["iam:PassRole", "ec2:RunInstances"]), json!("*"))])), &[Esc]).added(&["+ Allow ec2:RunInstances on *"]),
        case("a Deny removes the path", s(NOTHING), doc(json!([allow(json!("iam:*User*"), json!("*")), {"Effect": "Deny", "Action": "iam:*", "Resource": "*"}])), &[]),
        case("a conditional Deny does not", s(NOTHING), doc(json!([allow(json!("iam:PutUserPolicy"), json!("*")), {"Effect": "Deny", "Action": "iam:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}])), &[Esc]),
        // Diff shapes: strings vs lists, case, order, conditions.
        case("string vs list is no change", doc(json!([allow(json!("s3:GetObject"), json!("arn:aws:s3:::logs/*"))])), doc(json!([allow(json!(["s3:GetObject"]), json!(["arn:aws:s3:::logs/*"]))])), &[]),
        case("action case is no change", doc(json!([allow(json!("S3:GETOBJECT"), json!("*"))])), doc(json!([allow(json!("s3:GetObject"), json!("*"))])), &[]),
        case("order of actions is no change", doc(json!([allow(json!(["s3:A", "s3:B"]), json!("*"))])), doc(json!([allow(json!(["s3:B", "s3:A"]), json!("*"))])), &[]),
        case("a removed grant", read.clone(), s(NOTHING), &[]).removed(&["- Allow s3:GetObject on arn:aws:s3:::logs/*"]),
        case("a narrowed resource", doc(json!([allow(json!("s3:GetObject"), json!("*"))])), read.clone(), &[]).added(&["+ Allow s3:GetObject on arn:aws:s3:::logs/*"]).removed(&["- Allow s3:GetObject on *"]),
        case("a condition added", doc(json!([allow(json!("s3:GetObject"), json!("*"))])), doc(json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}])), &[]).added(&["~ Condition changed on s3:GetObject on *"]),
        case("condition value string vs list", doc(json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}])), doc(json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"StringEquals": {"AWS:PrincipalOrgID": ["o-1"]}}}])), &[]),
        case("a new grant shows its condition", s(NOTHING), doc(json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}])), &[]).added(&["+ Allow s3:GetObject on * when {\"IpAddress\":{\"aws:sourceip\":[\"10.0.0.0/8\"]}}"]),
        case("MFA condition dropped", mfa("ec2:TerminateInstances"), doc(json!([allow(json!("ec2:TerminateInstances"), json!("*"))])), &[Mfa]),
        case("MFA condition kept", mfa("ec2:TerminateInstances"), mfa("ec2:TerminateInstances"), &[]),
        case("force-MFA Deny removed", force_mfa, doc(json!([allow(json!("s3:*"), json!("*"))])), &[Mfa]),
        case("URL-encoded before and after", s(enc), s(enc), &[]),
        // Unreadable documents.
        case("malformed JSON", s(NOTHING), s("{\"Statement\": [{"), &[]).note("unreadable policy"),
        case("Statement is a number", s(NOTHING), s("{\"Statement\": 3}"), &[]).note("unreadable policy"),
        case("no Effect", s(NOTHING), s("{\"Statement\": [{\"Action\": \"*\", \"Resource\": \"*\"}]}"), &[]).note("unreadable policy"),
        case("Action and NotAction both", s(NOTHING), doc(json!([{"Effect": "Allow", "Action": "*", "NotAction": "s3:*", "Resource": "*"}])), &[]).note("unreadable policy"),
        case("Action holds a number", s(NOTHING), doc(json!([allow(json!(7), json!("*"))])), &[]).note("unreadable policy"),
        case("bad percent-encoding", s(NOTHING), s("%ZZ%7B"), &[]).note("unreadable policy"),
        case("unreadable previous version", s("{not json"), doc(json!([allow(json!("iam:PassRole"), json!("*"))])), &[]).note("previous version unreadable"),
        // Trust policies.
        case("trust: anyone", doc(json!([own.clone()])), doc(json!([own.clone(), trust(json!("*"))])), &[Trust]).trust().added(&["+ Allow anyone (*) to sts:AssumeRole"]),
        case("trust: AWS * is anyone", doc(json!([own.clone()])), doc(json!([trust(json!({"AWS": "*"}))])), &[Trust]).trust().removed(&["- Allow AWS arn:aws:iam::111122223333:root to sts:AssumeRole"]),
        case("trust: another account by id", doc(json!([own.clone()])), doc(json!([own.clone(), trust(json!({"AWS": "444455556666"}))])), &[Trust]).trust().added(&["+ Allow AWS arn:aws:iam::444455556666:root to sts:AssumeRole"]),
        case("trust: own account again", doc(json!([own.clone()])), doc(json!([trust(json!({"AWS": "111122223333"}))])), &[]).trust(),
        case("trust: a service", doc(json!([own.clone()])), doc(json!([own.clone(), trust(json!({"Service": "lambda.amazonaws.com"}))])), &[]).trust().added(&["+ Allow Service lambda.amazonaws.com to sts:AssumeRole"]),
        case("trust: federated without audience", s(NOTHING), doc(json!([{"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"}, "Action": "sts:AssumeRoleWithWebIdentity"}])), &[Trust]).trust(),
        case("trust: federated with subject", s(NOTHING), doc(json!([{"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"}, "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:org/app:*"}}}])), &[]).trust(),
        case("trust: NotPrincipal with Allow", s(NOTHING), doc(json!([{"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"}, "Action": "sts:AssumeRole"}])), &[Trust]).trust(),
        case("trust: unknown previous, other account", s(UNKNOWN), doc(json!([trust(json!({"AWS": "arn:aws:iam::444455556666:user/x"}))])), &[Trust]).trust().note("previous version unknown"),
        case("trust: MFA dropped", doc(json!([{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "sts:AssumeRole", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}])), doc(json!([own.clone()])), &[Mfa]).trust().added(&["~ Condition changed on"]),
        case("trust: unchanged", doc(json!([own.clone()])), doc(json!([own])), &[]).trust(),
    ]
}

#[test]
fn policy_pairs_give_the_expected_lines_and_verdicts() {
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let analysis = compare(
            case.kind,
            &side(&case.before),
            &side(&case.after),
            Some("111122223333"),
        );
        let kinds: Vec<VerdictKind> = analysis.verdicts.iter().map(|v| v.kind).collect();
        let mut wanted = case.verdicts.to_vec();
        wanted.dedup();
        let mut got = kinds.clone();
        got.dedup();
        let lines_ok = |want: &[&str], have: &[String]| {
            want.iter().all(|w| have.iter().any(|h| h.starts_with(w)))
        };
        let ok = got == wanted
            && lines_ok(case.added, &analysis.added)
            && lines_ok(case.removed, &analysis.removed)
            && (case.note.is_empty() || analysis.notes.iter().any(|n| n.contains(case.note)))
            && analysis
                .verdicts
                .iter()
                .all(|v| !v.reason.is_empty() && !v.source.is_empty());
        if !ok {
            failures.push(format!(
                "{}: wanted {:?} {:?} {:?} {:?}, got {analysis:#?}",
                case.name, wanted, case.added, case.removed, case.note
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn removing_everything_is_removal_only_and_unknown_previous_is_not() {
    let before = side(&doc(json!([allow(json!("s3:GetObject"), json!("*"))])));
    let removal = compare(Kind::Identity, &before, &Side::Nothing, None);
    assert!(removal.removal_only(), "{removal:?}");
    let unknown = compare(
        Kind::Identity,
        &Side::Unknown("x".into()),
        &Side::Nothing,
        None,
    );
    assert!(!unknown.removal_only());
}

#[test]
fn long_diffs_are_cut_with_a_count() {
    let actions: Vec<String> = (0..100).map(|i| format!("s3:Action{i}")).collect();
    let after = side(&doc(json!([allow(json!(actions), json!("*"))])));
    let analysis = compare(Kind::Identity, &Side::Nothing, &after, None);
    assert_eq!(analysis.added.len(), super::compare::MAX_LINES);
    assert!(analysis.added.last().unwrap().contains("and 61 more"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn action() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("*".to_owned()),
            "(iam|s3|ec2|lambda|sts):[A-Za-z*?]{1,12}",
        ]
    }

    fn statement() -> impl Strategy<Value = Value> {
        (
            prop::bool::ANY,
            prop::bool::ANY,
            prop::collection::vec(action(), 1..4),
            prop::collection::vec("(\\*|arn:aws:s3:::[a-z*]{1,8})", 1..3),
            prop::option::of("[a-z]{1,5}"),
        )
            .prop_map(|(allow, not, actions, resources, condition)| {
                let mut s =
                    json!({"Effect": if allow { "Allow" } else { "Deny" }, "Resource": resources});
                s[if not { "NotAction" } else { "Action" }] = json!(actions);
                if let Some(c) = condition {
                    s["Condition"] = json!({"StringEquals": {"aws:PrincipalTag/team": c}});
                }
                s
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn a_policy_compared_with_itself_has_no_diff(statements in prop::collection::vec(statement(), 1..5), encode in prop::bool::ANY) {
            let text = doc(json!(statements));
            let text = if encode {
                percent_encoding::utf8_percent_encode(&text, percent_encoding::NON_ALPHANUMERIC).to_string()
            } else {
                text
            };
            for kind in [Kind::Identity, Kind::Trust] {
                let analysis = compare(kind, &side(&text), &side(&text), Some("111122223333"));
                prop_assert!(analysis.added.is_empty() && analysis.removed.is_empty(), "{analysis:?}");
                prop_assert!(analysis.verdicts.is_empty(), "{analysis:?}");
            }
        }

        #[test]
        fn any_string_is_read_without_a_panic(text in ".{0,200}") {
            let _ = compare(Kind::Identity, &side(&text), &side(&text), None);
        }
    }
}

mod plans {
    use super::*;
    use crate::analysis::{from_record, plan, Source, Update, Version};
    use crate::event::Record;

    fn record(name: &str, params: Value, response: Value) -> Record {
        Record::from_json(json!({
            "eventID": "p-1", "eventName": name, "eventSource": "iam.amazonaws.com",
            "recipientAccountId": "111122223333", "requestParameters": params,
            "responseElements": response,
        }))
        .unwrap()
    }

    #[test]
    fn each_event_family_compares_the_right_documents() {
        let arn = "arn:aws:iam::111122223333:policy/deploy";
        let version = plan(&record(
            "CreatePolicyVersion",
            json!({"policyArn": arn, "policyDocument": "{}", "setAsDefault": "true"}),
            json!({"policyVersion": {"versionId": "v3"}}),
        ))
        .unwrap();
        assert_eq!(
            version.before,
            Source::Managed {
                arn: arn.into(),
                version: Version::PreviousDefault
            }
        );
        assert!(
            matches!(&version.updates[0], Update::Put(k, v) if k.kind == "managed-default" && v == "v3")
        );
        let not_default = plan(&record(
            "CreatePolicyVersion",
            json!({"policyArn": arn, "policyDocument": "{}", "setAsDefault": false}),
            Value::Null,
        ))
        .unwrap();
        assert_eq!(
            not_default.before,
            Source::Managed {
                arn: arn.into(),
                version: Version::Default
            }
        );
        assert!(not_default.updates.is_empty());
        let switch = plan(&record(
            "SetDefaultPolicyVersion",
            json!({"policyArn": arn, "versionId": "v1"}),
            Value::Null,
        ))
        .unwrap();
        assert_eq!(
            switch.after,
            Source::Managed {
                arn: arn.into(),
                version: Version::Id("v1".into())
            }
        );
        let detach = plan(&record(
            "DetachRolePolicy",
            json!({"policyArn": arn, "roleName": "app"}),
            Value::Null,
        ))
        .unwrap();
        assert_eq!(
            (detach.before.clone(), detach.after.clone()),
            (
                Source::Managed {
                    arn: arn.into(),
                    version: Version::Default
                },
                Source::Nothing
            )
        );
        let create_role = plan(&record(
            "CreateRole",
            json!({"roleName": "app", "assumeRolePolicyDocument": "{}"}),
            Value::Null,
        ))
        .unwrap();
        assert_eq!(
            (create_role.kind, create_role.before),
            (Kind::Trust, Source::Nothing)
        );
        let put = plan(&record(
            "PutGroupPolicy",
            json!({"groupName": "ops", "policyName": "p", "policyDocument": "{}"}),
            Value::Null,
        ))
        .unwrap();
        assert!(
            matches!(&put.before, Source::Snapshot(k) if k.kind == "group-policy" && k.entity == "ops" && k.name == "p")
        );
        let boundary = plan(&record(
            "PutUserPermissionsBoundary",
            json!({"userName": "bob", "permissionsBoundary": arn}),
            Value::Null,
        ))
        .unwrap();
        assert!(
            matches!(&boundary.updates[0], Update::Put(k, v) if k.entity == "user/bob" && v == arn)
        );
        assert!(plan(&record("CreateUser", json!({"userName": "x"}), Value::Null)).is_none());
    }

    #[test]
    fn a_removed_boundary_is_a_verdict_even_when_its_policy_is_unknown() {
        let analysis = from_record(&record(
            "DeleteRolePermissionsBoundary",
            json!({"roleName": "app"}),
            Value::Null,
        ))
        .unwrap();
        assert_eq!(analysis.verdicts[0].kind, VerdictKind::BoundaryRemoved);
        assert!(
            analysis
                .notes
                .iter()
                .any(|n| n.contains("previous version unknown")),
            "{analysis:?}"
        );
    }

    #[test]
    fn a_url_encoded_inline_policy_in_a_record_is_analysed() {
        let encoded = "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22iam%3ACreatePolicyVersion%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
        let analysis = from_record(&record(
            "PutUserPolicy",
            json!({"userName": "bob", "policyName": "p", "policyDocument": encoded}),
            Value::Null,
        ))
        .unwrap();
        assert_eq!(analysis.added, ["+ Allow iam:CreatePolicyVersion on *"]);
        assert_eq!(analysis.verdicts[0].kind, VerdictKind::PrivilegeEscalation);
        assert!(analysis.verdicts[0].source.contains("Rhino #1"));
    }
}
