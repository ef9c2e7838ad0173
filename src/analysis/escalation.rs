//! The known privilege-escalation paths, as data: each row is a set of actions that together
//! let a principal gain more than it was given, why, and the public catalogue that describes
//! the path. The rows are our own summary of those catalogues (no text or code copied):
//!
//! - Rhino Security Labs, "AWS IAM Privilege Escalation – Methods and Mitigation" (Spencer
//!   Gietzen, 2019), <https://github.com/RhinoSecurityLabs/AWS-IAM-Privilege-Escalation>:
//!   cited as "Rhino #n", its method numbers;
//! - Datadog, pathfinding.cloud, <https://pathfinding.cloud> (DataDog/pathfinding.cloud,
//!   `data/paths/*.yaml`): cited by its path ids (`iam-001`, `lambda-001`, …);
//! - Bishop Fox, iam-vulnerable, <https://github.com/BishopFox/iam-vulnerable>.
//!
//! An escalation is reported when a document newly grants *every* action of a row (through
//! action globs such as `iam:Put*` or a `NotAction` that does not exclude them).

/// One path: all of `actions` together, what they allow, the source.
pub(crate) struct Path {
    /// The actions, all needed (compared in any case).
    pub actions: &'static [&'static str],
    /// Only dangerous against other principals: a grant limited to the caller's own user
    /// (`${aws:username}` in every resource) does not count.
    pub others_only: bool,
    /// What a holder can do with it, in one clause.
    pub what: &'static str,
    /// Where the path is described.
    pub source: &'static str,
}

const fn path(
    actions: &'static [&'static str],
    others_only: bool,
    what: &'static str,
    source: &'static str,
) -> Path {
    Path {
        actions,
        others_only,
        what,
        source,
    }
}

/// The table, strongest (single-action) paths first.
#[rustfmt::skip]
pub(crate) const PATHS: &[Path] = &[
    path(&["iam:CreatePolicyVersion"], false, "can rewrite a managed policy it holds and make the new version the default", "Rhino #1; pathfinding.cloud iam-001"),
    path(&["iam:SetDefaultPolicyVersion"], false, "can switch a managed policy back to a more permissive version", "Rhino #2"),
    path(&["iam:AttachUserPolicy"], false, "can attach any managed policy (AdministratorAccess) to a user", "Rhino #7; pathfinding.cloud iam-008"),
    path(&["iam:AttachGroupPolicy"], false, "can attach any managed policy to a group it is in", "Rhino #8; pathfinding.cloud iam-010"),
    path(&["iam:AttachRolePolicy"], false, "can attach any managed policy to a role it can use", "Rhino #9; pathfinding.cloud iam-009"),
    path(&["iam:PutUserPolicy"], false, "can write any inline policy on a user", "Rhino #10; pathfinding.cloud iam-007"),
    path(&["iam:PutGroupPolicy"], false, "can write any inline policy on a group", "Rhino #11; pathfinding.cloud iam-011"),
    path(&["iam:PutRolePolicy"], false, "can write any inline policy on a role", "Rhino #12; pathfinding.cloud iam-005"),
    path(&["iam:AddUserToGroup"], false, "can join a more privileged group", "Rhino #13; pathfinding.cloud iam-013"),
    path(&["iam:UpdateAssumeRolePolicy"], false, "can make a role trust it, then assume that role", "Rhino #14; pathfinding.cloud iam-012"),
    path(&["iam:CreateAccessKey"], true, "can create access keys for other users and act as them", "Rhino #4; pathfinding.cloud iam-002"),
    path(&["iam:CreateLoginProfile"], true, "can give other users a console password and sign in as them", "Rhino #5; pathfinding.cloud iam-004"),
    path(&["iam:UpdateLoginProfile"], true, "can reset other users' console passwords", "Rhino #6; pathfinding.cloud iam-006"),
    path(&["iam:PassRole", "ec2:RunInstances"], false, "can start an instance with a more privileged role and use its credentials", "Rhino #3; pathfinding.cloud ec2-001"),
    path(&["iam:PassRole", "ec2:RequestSpotInstances"], false, "can start a spot instance with a more privileged role", "pathfinding.cloud ec2-003"),
    path(&["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"], false, "can run code as a more privileged role in a new Lambda function", "Rhino #15; pathfinding.cloud lambda-001"),
    path(&["iam:PassRole", "lambda:CreateFunction", "lambda:CreateEventSourceMapping"], false, "can run code as a more privileged role in a Lambda function triggered by an event source", "Rhino #16; pathfinding.cloud lambda-002"),
    path(&["lambda:UpdateFunctionCode"], false, "can replace the code of an existing function and run as its role", "Rhino #18; pathfinding.cloud lambda-003"),
    path(&["iam:PassRole", "cloudformation:CreateStack"], false, "can create a stack that acts as a more privileged role", "Rhino #21; pathfinding.cloud cfn-001"),
    path(&["iam:PassRole", "glue:CreateDevEndpoint"], false, "can open a Glue endpoint with a more privileged role", "Rhino #19"),
    path(&["glue:UpdateDevEndpoint"], false, "can add its SSH key to an existing Glue endpoint and use its role", "Rhino #20"),
    path(&["iam:PassRole", "codebuild:CreateProject", "codebuild:StartBuild"], false, "can run a build as a more privileged role", "pathfinding.cloud codebuild-001"),
    path(&["iam:PassRole", "ecs:RegisterTaskDefinition", "ecs:RunTask"], false, "can run a container task as a more privileged role", "pathfinding.cloud ecs-001"),
    path(&["iam:PassRole", "sagemaker:CreateNotebookInstance"], false, "can open a notebook that runs as a more privileged role", "Rhino #27; pathfinding.cloud sagemaker-001"),
    path(&["sagemaker:CreatePresignedNotebookInstanceUrl"], false, "can open existing notebooks and use their roles", "Rhino #28"),
    path(&["iam:PassRole", "datapipeline:CreatePipeline", "datapipeline:PutPipelineDefinition"], false, "can run a pipeline's commands as a more privileged role", "Rhino #22"),
    path(&["ssm:SendCommand"], false, "can run commands on managed instances and use their roles", "pathfinding.cloud ssm-002"),
    path(&["ssm:StartSession"], false, "can open a shell on managed instances and use their roles", "pathfinding.cloud ssm-001"),
    path(&["ec2-instance-connect:SendSSHPublicKey"], false, "can push an SSH key to instances and use their roles", "pathfinding.cloud ec2instanceconnect-003"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_names_service_actions_and_a_source() {
        assert!(PATHS.len() >= 24);
        for row in PATHS {
            assert!(!row.source.is_empty() && !row.what.is_empty());
            for action in row.actions {
                assert!(action.contains(':') && !action.contains('*'), "{action}");
            }
        }
    }
}
