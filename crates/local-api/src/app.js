// Shows the upgrade outcome from the redirect and the visitor's Pro status.
const outcome = new URLSearchParams(location.search).get("upgrade");
if (outcome) {
  const el = document.getElementById("upgrade");
  el.hidden = false;
  el.textContent = "Upgrade: " + outcome;
}
fetch("/api/entitlement", { credentials: "same-origin" })
  .then((response) => response.json().then((body) => ({ status: response.status, body })))
  .then(({ status, body }) => {
    const el = document.getElementById("status");
    if (status !== 200) {
      el.textContent = "unknown (" + (body.error || status) + ")";
      return;
    }
    el.textContent = body.pro ? "Pro (" + body.plan + ")" : "Not Pro";
    el.dataset.pro = String(body.pro);
    const billing = body.billing;
    document.getElementById("details").textContent =
      "source: " + body.source + (body.expires_at ? ", until " + body.expires_at : "") +
      (body.features && body.features.length ? "; features: " + body.features.join(", ") : "") +
      (billing ? "; billing: " + billing.state +
        (billing.renews_at ? ", renews " + billing.renews_at : "") +
        (billing.ends_at ? ", ends " + billing.ends_at : "") +
        (billing.scheduled_plan ? ", changes to " + billing.scheduled_plan : "") : "");
  })
  .catch((error) => {
    document.getElementById("status").textContent = "unavailable (" + error + ")";
  });
