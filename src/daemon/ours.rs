//! The names of our own monitoring ([`Ours`]) from the stack's outputs and its trail, so that
//! tampering with *our* bucket, key, queue, log group, stack or alarms is CRITICAL and the same
//! call on anything else ranks lower. Read once at start; when the stack cannot be read, the
//! names the configuration gives (stack name, `alarm.queue_url`, `alarm.log_group`) stand.

use crate::config::Config;
use crate::rules::Ours;
use crate::stack::names::output;

/// The AWS actions this file calls (the daemon's policy, `deploy/iamwatchd-policy.json`,
/// allows them; `src/aws/actions.rs` enforces it).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &["cloudformation:DescribeStacks", "cloudtrail:GetTrail"];

/// `config`'s names of our monitoring, completed from the stack's outputs and its trail.
pub(crate) async fn read(config: &Config) -> Ours {
    let mut ours = config.rules.ours.clone();
    let sdk = crate::aws::loader(&config.aws.region, config.aws.max_attempts)
        .load()
        .await;
    let stack_name = &config.aws.stack_name;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let described = match cfn.describe_stacks().stack_name(stack_name).send().await {
        Ok(described) => described,
        Err(error) => {
            let error = crate::aws::errors::AwsError::read(&error);
            tracing::warn!(stack = %stack_name, %error,
                "cannot read the stack's outputs: tampering with the trail's bucket and key is \
                 ranked like the same call elsewhere (deploy the stack, or allow \
                 cloudformation:DescribeStacks as deploy/iamwatchd-policy.json does)");
            return ours;
        }
    };
    let Some(stack) = described.stacks().first() else {
        return ours;
    };
    let output = |key: &str| {
        stack
            .outputs()
            .iter()
            .find(|o| o.output_key() == Some(key))
            .and_then(|o| o.output_value())
            .map(str::to_owned)
    };
    ours.trail_bucket = output(output::BUCKET_NAME).or(ours.trail_bucket);
    ours.log_group = output(output::LOG_GROUP_NAME).or(ours.log_group);
    ours.queue_url = output(output::QUEUE_URL).or(ours.queue_url);
    if let Some(trail) = output(output::TRAIL_ARN) {
        let cloudtrail = aws_sdk_cloudtrail::Client::new(&sdk);
        match cloudtrail.get_trail().name(&trail).send().await {
            Ok(answer) => {
                if let Some(trail) = answer.trail() {
                    ours.trail_key = trail.kms_key_id().map(str::to_owned);
                    ours.trail_bucket = trail
                        .s3_bucket_name()
                        .map(str::to_owned)
                        .or(ours.trail_bucket);
                }
            }
            Err(error) => {
                let error = crate::aws::errors::AwsError::read(&error);
                tracing::warn!(%trail, %error,
                    "cannot read the trail's KMS key: disabling it is ranked like any key's \
                     (allow cloudtrail:GetTrail as deploy/iamwatchd-policy.json does)");
            }
        }
    }
    tracing::info!(
        ?ours,
        "our monitoring's names, for resource-specific tampering"
    );
    ours
}
