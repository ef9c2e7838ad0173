//! TEMPORARY placeholder for the rule catalogue being written on branch `rules`: only the three
//! items `deploy` and `template` use, so this branch compiles. Drop this commit at merge.

/// Placeholder: every successful, mutating IAM call.
pub fn iam_metric_filter_pattern() -> String {
    r#"{ ($.eventSource = "iam.amazonaws.com") && ($.readOnly IS FALSE) && ($.errorCode NOT EXISTS) }"#.to_owned()
}

/// Placeholder: calls that blind the monitoring.
pub fn tampering_metric_filter_pattern() -> String {
    r#"{ ($.eventName = "StopLogging") || ($.eventName = "DeleteTrail") || ($.eventName = "UpdateTrail") || ($.eventName = "PutEventSelectors") || ($.eventName = "DeleteMetricFilter") || ($.eventName = "DeleteAlarms") || ($.eventName = "DisableAlarmActions") || ($.eventName = "DeleteTopic") || ($.eventName = "Unsubscribe") }"#.to_owned()
}

/// Placeholder: the CIS 4.4 / Security Hub CloudWatch.4 filter.
pub const CIS_4_4_FILTER_PATTERN: &str = "{($.eventName=DeleteGroupPolicy)||($.eventName=DeleteRolePolicy)||($.eventName=DeleteUserPolicy)||($.eventName=PutGroupPolicy)||($.eventName=PutRolePolicy)||($.eventName=PutUserPolicy)||($.eventName=CreatePolicy)||($.eventName=DeletePolicy)||($.eventName=CreatePolicyVersion)||($.eventName=DeletePolicyVersion)||($.eventName=AttachRolePolicy)||($.eventName=DetachRolePolicy)||($.eventName=AttachUserPolicy)||($.eventName=DetachUserPolicy)||($.eventName=AttachGroupPolicy)||($.eventName=DetachGroupPolicy)}";
