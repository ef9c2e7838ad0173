//! The buckets the stack creates when no trail bucket is given: the trail bucket (versioned,
//! private, TLS only, its server access logged) and the bucket that receives those access logs
//! (private, TLS only, written by the S3 logging service for the trail bucket only). Both are
//! retained when the stack is deleted: they are the audit record.

use serde_json::{json, Map, Value};

use super::checkov::skip;
use super::key::TRAIL_ARN;
use super::{get_att, reference, sub};
use crate::stack::names::{param, ACCESS_LOG_BUCKET_LOGICAL_ID, CREATED_BUCKET_LOGICAL_ID};

/// The properties both created buckets share: S3-managed encryption, every public access
/// blocked, objects owned by the bucket owner (no ACLs), and a lifecycle that expires what is
/// older than the log retention (old versions a day after they are replaced).
fn private_bucket_properties() -> Value {
    json!({
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [
                { "ServerSideEncryptionByDefault": { "SSEAlgorithm": "AES256" } }
            ],
        },
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": true,
            "BlockPublicPolicy": true,
            "IgnorePublicAcls": true,
            "RestrictPublicBuckets": true,
        },
        "OwnershipControls": { "Rules": [{ "ObjectOwnership": "BucketOwnerEnforced" }] },
        "LifecycleConfiguration": {
            "Rules": [{
                "Id": "expire-cloudtrail-logs",
                "Status": "Enabled",
                "ExpirationInDays": reference(param::LOG_RETENTION_DAYS),
                "NoncurrentVersionExpiration": { "NoncurrentDays": 1 },
                "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 7 },
            }],
        },
    })
}

/// The statement every bucket policy of the stack starts with: no request over plain HTTP.
fn deny_insecure_transport(bucket: &str) -> Value {
    json!({
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": { "AWS": "*" },
        "Action": "s3:*",
        "Resource": [get_att(bucket, "Arn"), sub(&format!("${{{bucket}.Arn}}/*"))],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } },
    })
}

/// Where the trail writes its log files: `AWSLogs/<account>/`, and for an organization trail
/// also `AWSLogs/<organization ID>/`, under which every member account's files go (the
/// management account's own go to both, depending on when the trail became one).
fn trail_log_objects() -> Value {
    let own = sub(&format!(
        "${{{CREATED_BUCKET_LOGICAL_ID}.Arn}}/AWSLogs/${{AWS::AccountId}}/*"
    ));
    let organization = sub(&format!(
        "${{{CREATED_BUCKET_LOGICAL_ID}.Arn}}/AWSLogs/${{{}}}/*",
        param::ORGANIZATION_ID
    ));
    json!({ "Fn::If": ["OrganizationTrail", [own.clone(), organization], own] })
}

/// A bucket that a condition creates and deletion keeps.
fn retained_bucket(properties: Value, metadata: Option<Value>) -> Value {
    let mut bucket = json!({
        "Type": "AWS::S3::Bucket",
        "Condition": "CreateBucket",
        // The logs are the audit record: deleting the stack must not delete them.
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": properties,
    });
    if let Some(metadata) = metadata {
        bucket["Metadata"] = metadata;
    }
    bucket
}

/// Inserts both buckets and their policies.
pub(super) fn bucket_resources(resources: &mut Map<String, Value>) {
    let mut trail_bucket = private_bucket_properties();
    trail_bucket["VersioningConfiguration"] = json!({ "Status": "Enabled" });
    trail_bucket["LoggingConfiguration"] = json!({
        "DestinationBucketName": reference(ACCESS_LOG_BUCKET_LOGICAL_ID),
        "LogFilePrefix": "trail-bucket/",
    });
    let mut trail_bucket = retained_bucket(trail_bucket, None);
    // S3 refuses a logging configuration whose target bucket's policy does not yet let the
    // logging service write.
    trail_bucket["DependsOn"] = json!(["TrailAccessLogBucketPolicy"]);
    resources.insert(CREATED_BUCKET_LOGICAL_ID.to_owned(), trail_bucket);
    // What CloudTrail needs (and nothing more), limited to this stack's trail.
    resources.insert(
        "TrailBucketPolicy".to_owned(),
        json!({
            "Type": "AWS::S3::BucketPolicy",
            "Condition": "CreateBucket",
            "Properties": {
                "Bucket": reference(CREATED_BUCKET_LOGICAL_ID),
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        deny_insecure_transport(CREATED_BUCKET_LOGICAL_ID),
                        {
                            "Sid": "CloudTrailAclCheck",
                            "Effect": "Allow",
                            "Principal": { "Service": "cloudtrail.amazonaws.com" },
                            "Action": "s3:GetBucketAcl",
                            "Resource": get_att(CREATED_BUCKET_LOGICAL_ID, "Arn"),
                            "Condition": { "StringEquals": { "aws:SourceArn": sub(TRAIL_ARN) } },
                        },
                        {
                            "Sid": "CloudTrailWrite",
                            "Effect": "Allow",
                            "Principal": { "Service": "cloudtrail.amazonaws.com" },
                            "Action": "s3:PutObject",
                            "Resource": trail_log_objects(),
                            "Condition": {
                                "StringEquals": {
                                    "s3:x-amz-acl": "bucket-owner-full-control",
                                    "aws:SourceArn": sub(TRAIL_ARN),
                                },
                            },
                        },
                    ],
                },
            },
        }),
    );
    let mut log_bucket = private_bucket_properties();
    // Access logs are not the audit record CloudTrail's digests protect; they expire with it.
    log_bucket["LifecycleConfiguration"]["Rules"][0]["Id"] = json!("expire-access-logs");
    resources.insert(
        ACCESS_LOG_BUCKET_LOGICAL_ID.to_owned(),
        retained_bucket(
            log_bucket,
            Some(json!({
                "checkov": {
                    "skip": [
                        skip(
                            "CKV_AWS_18",
                            "This bucket is the access-log target of the trail bucket; logging \
                             its own access would need a third bucket, and so on. It is private, \
                             TLS-only and written only by the S3 logging service for the trail \
                             bucket (its bucket policy).",
                        ),
                        skip(
                            "CKV_AWS_21",
                            "Server access logs are written once by the S3 logging service and \
                             never overwritten; versioning would only keep copies of objects no \
                             one replaces. The audit record itself (the trail bucket) is \
                             versioned.",
                        ),
                    ],
                },
            })),
        ),
    );
    resources.insert(
        "TrailAccessLogBucketPolicy".to_owned(),
        json!({
            "Type": "AWS::S3::BucketPolicy",
            "Condition": "CreateBucket",
            "Properties": {
                "Bucket": reference(ACCESS_LOG_BUCKET_LOGICAL_ID),
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        deny_insecure_transport(ACCESS_LOG_BUCKET_LOGICAL_ID),
                        {
                            "Sid": "S3ServerAccessLogsOfTheTrailBucket",
                            "Effect": "Allow",
                            "Principal": { "Service": "logging.s3.amazonaws.com" },
                            "Action": "s3:PutObject",
                            "Resource": sub(&format!("${{{ACCESS_LOG_BUCKET_LOGICAL_ID}.Arn}}/trail-bucket/*")),
                            // Only the trail bucket logs under this prefix. Its ARN cannot be
                            // named: the trail bucket waits for this policy (see above).
                            "Condition": {
                                "StringEquals": { "aws:SourceAccount": sub("${AWS::AccountId}") },
                            },
                        },
                    ],
                },
            },
        }),
    );
}
