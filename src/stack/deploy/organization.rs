//! `deploy --organization`: before the stack's trail becomes an organization trail, the three
//! things CloudTrail requires are checked, so that the operator hears which one is missing and
//! how to fix it before any change set exists, rather than reading a rolled-back stack's
//! `NotOrganizationMasterAccountException`:
//!
//! - the credentials are the organization's **management account**'s (only it can create an
//!   organization trail; `sts:GetCallerIdentity` against `DescribeOrganization`'s master
//!   account);
//! - the organization has **all features** (consolidated billing alone has no trails);
//! - CloudTrail's **trusted access** is enabled (`cloudtrail.amazonaws.com` among the
//!   organization's service principals).

use aws_config::SdkConfig;
use aws_sdk_organizations::types::OrganizationFeatureSet;

use super::error::DeployError;
use crate::aws::errors::AwsError;

/// The AWS actions this file calls (see `src/aws/actions.rs`).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &[
    "organizations:DescribeOrganization",
    "organizations:ListAWSServiceAccessForOrganization",
    "sts:GetCallerIdentity",
];

/// CloudTrail's service principal, which trusted access must name.
pub(crate) const CLOUDTRAIL_SERVICE_PRINCIPAL: &str = "cloudtrail.amazonaws.com";

/// The caller's identity: its account and its ARN.
pub(super) async fn caller(config: &SdkConfig) -> Result<(String, String), DeployError> {
    let identity = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| DeployError::call("sts:GetCallerIdentity", AwsError::read(&e)))?;
    Ok((
        identity.account().unwrap_or_default().to_owned(),
        identity.arn().unwrap_or_default().to_owned(),
    ))
}

/// The organization's ID once the caller may make its trail an organization trail; else the
/// error that names what to fix.
pub(super) async fn check_organization_trail(config: &SdkConfig) -> Result<String, DeployError> {
    let (account, _) = caller(config).await?;
    let org = aws_sdk_organizations::Client::new(config);
    let organization = match org.describe_organization().send().await {
        Ok(answer) => answer.organization,
        Err(error) => {
            let error = AwsError::read(&error);
            if !error
                .code
                .as_deref()
                .is_some_and(|c| c.contains("NotInUse"))
            {
                return Err(DeployError::call(
                    "organizations:DescribeOrganization",
                    error,
                ));
            }
            None
        }
    };
    let Some(organization) = organization else {
        return Err(DeployError::NoOrganization { account });
    };
    let id = organization.id().unwrap_or_default().to_owned();
    let management = organization.master_account_id().unwrap_or_default();
    if management != account {
        return Err(DeployError::NotManagementAccount {
            account,
            management: management.to_owned(),
            organization: id,
        });
    }
    if let Some(feature_set) = organization
        .feature_set()
        .filter(|f| **f != OrganizationFeatureSet::All)
    {
        return Err(DeployError::NotAllFeatures {
            organization: id,
            feature_set: feature_set.as_str().to_owned(),
        });
    }
    let mut enabled = false;
    let mut pages = org
        .list_aws_service_access_for_organization()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            DeployError::call(
                "organizations:ListAWSServiceAccessForOrganization",
                AwsError::read(&e),
            )
        })?;
        enabled |= page
            .enabled_service_principals()
            .iter()
            .any(|p| p.service_principal() == Some(CLOUDTRAIL_SERVICE_PRINCIPAL));
    }
    if !enabled {
        return Err(DeployError::TrustedAccessMissing { organization: id });
    }
    Ok(id)
}
