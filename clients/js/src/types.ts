/** The shapes of the entitlement answer, shared by the client and the pass verifier. */

/** `billing.state` of an answer. */
export type BillingState =
  | "lifetime"
  | "active"
  | "trialing"
  | "past_due"
  | "on_hold"
  | "cancelled"
  | "paused"
  | "expired"
  | "revoked";

/** What the grant answering a check is doing with its billing. */
export interface Billing {
  state: BillingState;
  /** Next billing date (RFC 3339) of an active subscription. */
  renews_at?: string | null;
  /** End of access (RFC 3339) of a cancelled, paused or late subscription. */
  ends_at?: string | null;
  /** Plan a scheduled change moves to at the next billing date. */
  scheduled_plan?: string | null;
}

/** The JSON of `GET /api/entitlement`. */
export interface Entitlement {
  pro: boolean;
  plan: string | null;
  status: string | null;
  /** RFC 3339, or null for access that does not end. */
  expires_at: string | null;
  /**
   * `database` when the database answered; `cookie` when the cookie answered alone; `pass` when
   * this package answered from a verified pass without asking the API.
   */
  source: "database" | "cookie" | "pass";
  /** What the answering credential covers: one purchase's grants, or the whole account. */
  scope: "purchase" | "account" | null;
  /** What the plan(s) giving access unlock (`PLAN_FEATURES`). */
  features: string[];
  billing: Billing | null;
  /** Per meter, for a plan with limits (`PLAN_LIMITS`). */
  usage?: Record<string, { limit: number | null; used: number; reserved: number; remaining: number | null; credits: number; resets_at: string }>;
  /** The edge pass issued with this answer (also set as the `__Host-llmxt_pass` cookie), if any. */
  pass?: string;
}
