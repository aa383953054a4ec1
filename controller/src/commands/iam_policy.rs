//! `ballast iam-policy FILE --for controller|worker`: prints the least-privilege policy
//! ([`crate::iam_policy`]) as one JSON document on stdout.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::IamPolicyArgs;
use crate::iam_policy::{self, ArnScope};

/// The policy's JSON text for `args` (what `run` prints; the golden test compares it).
pub fn render(args: &IamPolicyArgs) -> anyhow::Result<(String, ArnScope)> {
    let bp = super::provision::load_blueprint(&args.file, &args.values.files)?;
    let scope = ArnScope::new(&bp, args.region.as_deref(), args.account_id.as_deref());
    let document = iam_policy::policy(&bp, args.for_, &scope, &args.worker, &args.lease_table)?;
    Ok((document.to_pretty_json(), scope))
}

pub fn run(args: &IamPolicyArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let (text, scope) = render(args)?;
    if scope.any_account() {
        eprintln!(
            "note: no --account-id: every ARN's account is `*` (any account); pass \
             --account-id 123456789012 to pin it"
        );
    }
    out.write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
