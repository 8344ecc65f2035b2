//! Cross-check against the reference `standardwebhooks` Python package: it signs, we verify;
//! we sign, it verifies.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use llmxt_domain::time::unix_now;
use llmxt_domain::webhook_signature::{WebhookHeaders, WebhookSecrets, sign, verify};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn python() -> PathBuf {
    let path = std::env::var_os("LLMXT_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/venv/bin/python")
        });
    let has_package = Command::new(&path)
        .args(["-c", "import standardwebhooks"])
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        has_package,
        "{} cannot import standardwebhooks. Run the tests with `scripts/test.sh` (it creates \
         .cache/venv with the package), or set LLMXT_TEST_PYTHON to a Python that has it.",
        path.display()
    );
    path
}

fn run_python(script: &str, input: &str) -> String {
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("python ran");
    assert!(output.status.success(), "python failed");
    String::from_utf8(output.stdout).expect("utf-8")
}

fn bodies() -> Vec<String> {
    let mut bodies = vec![
        String::new(),
        r#"{"test": 2432232314}"#.to_owned(),
        r#"{"type":"payment.succeeded","data":{"customer":{"email":"zoë@example.com"}}}"#
            .to_owned(),
        "{\n  \"pretty\": true,\n  \"tabs\":\t\"x\"\n}".to_owned(),
    ];
    for n in 0..40 {
        bodies.push(format!(
            r#"{{"n":{n},"text":"{}","emoji":"✓"}}"#,
            "ab\\\"c".repeat(n)
        ));
    }
    bodies
}

#[test]
fn python_signs_and_we_verify() {
    let now = unix_now();
    let script = r#"
import sys, json, datetime
from standardwebhooks.webhooks import Webhook
wh = Webhook(sys.argv[1] if len(sys.argv) > 1 else "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
cases = json.load(sys.stdin)
out = []
for i, (body, ts) in enumerate(cases):
    stamp = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
    out.append(wh.sign(f"msg_{i}", stamp, body))
print(json.dumps(out))
"#;
    let cases: Vec<(String, i64)> = bodies().into_iter().map(|b| (b, now)).collect();
    let signatures: Vec<String> = serde_json::from_str(&run_python(
        script,
        &serde_json::to_string(&cases).expect("json"),
    ))
    .expect("json out");
    assert_eq!(signatures.len(), cases.len());
    let secrets = WebhookSecrets::parse(SECRET).expect("secret");
    let ts = now.to_string();
    for (i, ((body, _), signature)) in cases.iter().zip(&signatures).enumerate() {
        let id = format!("msg_{i}");
        let headers = WebhookHeaders {
            id: Some(&id),
            timestamp: Some(&ts),
            signature: Some(signature),
        };
        assert!(
            verify(&secrets, headers, body.as_bytes(), now).is_ok(),
            "case {i}: {body:?}"
        );
        let mut tampered = body.clone().into_bytes();
        tampered.push(b' ');
        assert!(
            verify(&secrets, headers, &tampered, now).is_err(),
            "tampered case {i}"
        );
    }
}

#[test]
fn we_sign_and_python_verifies() {
    let now = unix_now();
    let key = WebhookSecrets::parse(SECRET).expect("secret").keys()[0].clone();
    let cases: Vec<(String, String, String)> = bodies()
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let id = format!("msg_rs_{i}");
            let signature = sign(&key, &id, now, body.as_bytes());
            (id, body, signature)
        })
        .collect();
    let script = r#"
import sys, json
from standardwebhooks.webhooks import Webhook
wh = Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
results = []
for msg_id, body, signature, ts in json.load(sys.stdin):
    headers = {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": signature}
    try:
        wh.verify(body, headers, json_parse=False)
        ok = True
    except Exception:
        ok = False
    try:
        wh.verify(body + " ", headers, json_parse=False)
        tampered_ok = True
    except Exception:
        tampered_ok = False
    results.append([ok, tampered_ok])
print(json.dumps(results))
"#;
    let input: Vec<(&str, &str, &str, String)> = cases
        .iter()
        .map(|(id, body, sig)| (id.as_str(), body.as_str(), sig.as_str(), now.to_string()))
        .collect();
    let results: Vec<(bool, bool)> = serde_json::from_str(&run_python(
        script,
        &serde_json::to_string(&input).expect("json"),
    ))
    .expect("json out");
    assert_eq!(results.len(), cases.len());
    for (i, (ok, tampered_ok)) in results.into_iter().enumerate() {
        assert!(
            ok,
            "python rejected our signature for case {i}: {:?}",
            cases[i].1
        );
        assert!(!tampered_ok, "python accepted a tampered body for case {i}");
    }
}
