//! The loop: every CSR change queues its name; a worker reads it fresh, approves it when a rule and a
//! SubjectAccessReview allow (upstream's csrapproving), then signs it once approved (upstream's csrsigning).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use rkube_client::queue::WorkQueue;
use tokio::sync::watch;

use crate::request;
use crate::rules::{self, Recognized};
use crate::sign::Signer;

struct Ctx {
    api: Api<CertificateSigningRequest>,
    reviews: Api<SubjectAccessReview>,
    signer: Signer,
}

fn has(csr: &CertificateSigningRequest, ty: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == ty && c.status == "True"))
}

fn condition(ty: &str, reason: &str, message: &str) -> CertificateSigningRequestCondition {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    CertificateSigningRequestCondition {
        type_: ty.to_owned(),
        status: "True".to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

fn push_condition(csr: &mut CertificateSigningRequest, c: CertificateSigningRequestCondition) {
    csr.status.get_or_insert_with(Default::default).conditions.get_or_insert_with(Vec::new).push(c);
}

/// Whether the requester may create `certificatesigningrequests/<subresource>` (the approver's SubjectAccessReview).
async fn allowed(ctx: &Ctx, csr: &CertificateSigningRequest, subresource: &str) -> Result<bool, kube::Error> {
    let spec = &csr.spec;
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: spec.username.clone(),
            uid: spec.uid.clone(),
            groups: spec.groups.clone(),
            extra: spec.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some("certificates.k8s.io".to_owned()),
                resource: Some("certificatesigningrequests".to_owned()),
                subresource: Some(subresource.to_owned()),
                verb: Some("create".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = ctx.reviews.create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

async fn approve(ctx: &Ctx, mut csr: CertificateSigningRequest, why: Recognized) -> Result<(), kube::Error> {
    if let Some(sub) = why.permission()
        && !allowed(ctx, &csr, sub).await?
    {
        tracing::debug!(
            csr = csr.metadata.name.as_deref().unwrap_or_default(),
            "requester not allowed {sub}: left pending"
        );
        return Ok(());
    }
    let name = csr.metadata.name.clone().unwrap_or_default();
    push_condition(&mut csr, condition("Approved", "AutoApproved", why.message()));
    ctx.api.replace_subresource("approval", &name, &PostParams::default(), &csr).await?;
    tracing::info!(csr = %name, requester = csr.spec.username.as_deref().unwrap_or_default(), "approved: {}", why.message());
    Ok(())
}

async fn sign(
    ctx: &Ctx,
    mut csr: CertificateSigningRequest,
    parsed: Result<request::Parsed, String>,
) -> Result<(), kube::Error> {
    let name = csr.metadata.name.clone().unwrap_or_default();
    let signed = parsed.and_then(|req| {
        ctx.signer.sign(
            &csr.spec.signer_name,
            &req,
            csr.spec.usages.as_deref().unwrap_or_default(),
            csr.spec.expiration_seconds,
        )
    });
    match signed {
        Ok(pem) => csr.status.get_or_insert_with(Default::default).certificate = Some(ByteString(pem.into_bytes())),
        Err(reason) => {
            tracing::warn!(csr = %name, %reason, "not signed");
            push_condition(&mut csr, condition("Failed", "SignerValidationFailure", &reason));
        }
    }
    ctx.api.replace_status(&name, &PostParams::default(), &csr).await?;
    tracing::info!(csr = %name, "signed");
    Ok(())
}

async fn process(ctx: &Ctx, name: &str) -> Result<(), kube::Error> {
    let Some(csr) = ctx.api.get_opt(name).await? else { return Ok(()) };
    let parsed = request::parse(&csr.spec.request.0);
    let usages = csr.spec.usages.clone().unwrap_or_default();
    if !has(&csr, "Approved") && !has(&csr, "Denied") {
        let why = parsed.as_ref().ok().and_then(|req| {
            rules::recognize(
                &csr.spec.signer_name,
                csr.spec.username.as_deref().unwrap_or_default(),
                csr.spec.groups.as_deref().unwrap_or_default(),
                req,
                &usages,
            )
        });
        // Approving changes the object: the watch brings it back here for signing.
        return match why {
            Some(why) => approve(ctx, csr, why).await,
            None => Ok(()),
        };
    }
    let issued = csr.status.as_ref().and_then(|s| s.certificate.as_ref()).is_some_and(|c| !c.0.is_empty());
    if has(&csr, "Approved") && !has(&csr, "Failed") && !issued && Signer::handles(&csr.spec.signer_name) {
        sign(ctx, csr, parsed).await?;
    }
    Ok(())
}

/// Runs the approver and signer until `stop` turns true.
pub(crate) async fn run(client: kube::Client, signer: Signer, mut stop: watch::Receiver<bool>) {
    let queue = WorkQueue::<String>::new(Duration::from_millis(100), Duration::from_secs(60));
    let ctx = Arc::new(Ctx { api: Api::all(client.clone()), reviews: Api::all(client), signer });
    let q = queue.clone();
    let api = ctx.api.clone();
    let feed = async move {
        let stream = watcher(api, watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    if let Some(n) = o.metadata.name {
                        q.add(n);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "watching CertificateSigningRequests failed; retrying"),
            }
        }
    };
    let work = async {
        while let Some(name) = queue.get().await {
            match process(&ctx, &name).await {
                Ok(()) => queue.forget(&name),
                Err(e) => {
                    tracing::warn!(csr = %name, error = %e, "CertificateSigningRequest not handled; retrying");
                    queue.add_rate_limited(name.clone());
                }
            }
            queue.done(&name);
        }
    };
    tokio::select! {
        _ = feed => {}
        _ = work => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    queue.shutdown();
}
