/**
 * Usage limits (docs/usage.md): reserve before the work, commit what it used, release when it
 * failed. Every call is a signed server-to-server `POST /api/usage/*`.
 */

/** Who spends: an email (account-wide) or the visitor's whole `Cookie` header (its scope). */
export type Buyer = { email: string } | { cookie: string };

export interface ReserveOptions {
  meter: string;
  /** A positive integer up to 10^12. */
  amount: number;
  /** The same key gets the first answer and is charged once (24 h). */
  idempotencyKey: string;
  /** 1..3600 seconds before an uncommitted hold goes back (default 300). */
  holdSeconds?: number;
}

export interface Reservation {
  reservation: string;
  meter: string;
  reserved: number;
  /** null for an unlimited meter. */
  remaining: number | null;
  /** Credit-pack units still available (spent after the allowance). */
  credits: number;
  resets_at: string;
  expires_at: string;
  repeated?: boolean;
}

export interface Settled {
  state: "committed" | "released";
  used: number;
  remaining: number | null;
}

export interface Consumed {
  meter: string;
  consumed: number;
  used: number;
  remaining: number | null;
  credits: number;
  resets_at: string;
  repeated?: boolean;
}

/** The `402` answer: not enough left in the period's allowance and credit packs together. */
export class LimitReachedError extends Error {
  readonly status = 402;
  readonly error = "limit_reached";
  readonly meter: string;
  readonly limit: number | null;
  readonly used: number;
  readonly reserved: number;
  readonly remaining: number | null;
  /** Credit-pack units available. */
  readonly credits: number;
  readonly resets_at: string;
  constructor(fields: { meter: string; limit: number | null; used: number; reserved: number; remaining: number | null; credits: number; resets_at: string }) {
    super(`usage limit reached for ${fields.meter}`);
    this.name = "LimitReachedError";
    this.meter = fields.meter;
    this.limit = fields.limit;
    this.used = fields.used;
    this.reserved = fields.reserved;
    this.remaining = fields.remaining;
    this.credits = fields.credits;
    this.resets_at = fields.resets_at;
  }
}

/** Any other refusal: `status` and the API's `error` (`no_access`, `meter_not_in_plan`, …). */
export class UsageError extends Error {
  readonly status: number;
  readonly error: string;
  /** Seconds to wait, on a `503`. */
  readonly retryAfter?: number;
  constructor(status: number, error: string, retryAfter?: number) {
    super(`usage request answered ${status}: ${error}`);
    this.name = "UsageError";
    this.status = status;
    this.error = error;
    this.retryAfter = retryAfter;
  }
}

/**
 * What `withUsage`'s work returns (or resolves to):
 * - a number: the amount used;
 * - `{ amount?, value? }`: the amount used (all reserved when absent), and `value`, which
 *   `withUsage` returns;
 * - `undefined` or `null`: all reserved was used.
 *
 * The amount is floored and clamped to `0..reserved`; one that is not a number (`NaN`) counts as
 * all. A positive amount is committed (the rest goes back); `0` releases the whole hold.
 */
export type UsageOutcome<T> = number | { amount?: number; value?: T } | null | undefined | void;

export interface UsageClient {
  /** `(buyer, options)`, or one object with both: `{ email | cookie, meter, amount, … }`. */
  reserve(buyer: Buyer, options: ReserveOptions): Promise<Reservation>;
  reserve(request: Buyer & ReserveOptions): Promise<Reservation>;
  /** Keeps `amount` (all by default); the rest goes back. */
  commit(reservation: string, amount?: number): Promise<Settled>;
  release(reservation: string): Promise<Settled>;
  /** `(buyer, options)`, or one object with both. */
  consume(buyer: Buyer, options: Omit<ReserveOptions, "holdSeconds">): Promise<Consumed>;
  consume(request: Buyer & Omit<ReserveOptions, "holdSeconds">): Promise<Consumed>;
  /**
   * Reserves `amount`, runs `work` and settles the hold by what it returns (see
   * {@link UsageOutcome}): commits the amount used, or releases when that is `0`. Resolves to
   * `value` of a returned object, else `undefined`. When `work` throws, releases the hold and
   * rethrows the work's error. When the commit or release itself fails, rejects with that error
   * (a `UsageError`; an unsettled hold lapses after `holdSeconds`).
   */
  withUsage<T>(options: Buyer & ReserveOptions, work: (reservation: Reservation) => Promise<{ amount?: number; value: T }>): Promise<T>;
  withUsage<T = undefined>(
    options: Buyer & ReserveOptions,
    work: (reservation: Reservation) => UsageOutcome<T> | Promise<UsageOutcome<T>>,
  ): Promise<T | undefined>;
}

type Sign = (timestamp: number, path: string, body: string) => Promise<string>;

/** The usage calls of a client for `base` (use `createClient(…).usage`). */
export function usageClient(base: string, sign: Sign, timeoutMs: number): UsageClient {
  async function post<T>(path: string, { cookie, ...fields }: Record<string, unknown>): Promise<T> {
    const body = JSON.stringify(fields);
    const timestamp = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "x-llmxt-timestamp": String(timestamp),
      "x-llmxt-signature": await sign(timestamp, path, body),
    };
    if (typeof cookie === "string") headers.cookie = cookie;
    const response = await fetch(base + path, {
      method: "POST",
      headers,
      body,
      cache: "no-store",
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    const answer = (await response.json().catch(() => ({}))) as Record<string, any>;
    if (response.status === 402) throw new LimitReachedError(answer as any);
    if (!response.ok) throw new UsageError(response.status, String(answer.error ?? response.statusText), answer.retry_after);
    return answer as T;
  }
  const buyerFields = (buyer: Buyer) => ("email" in buyer ? { email: buyer.email } : { cookie: buyer.cookie });
  const reserve = (buyer: Buyer, o: ReserveOptions = buyer as any) =>
    post<Reservation>("/api/usage/reserve", {
      ...buyerFields(buyer),
      meter: o.meter,
      amount: o.amount,
      idempotency_key: o.idempotencyKey,
      ...(o.holdSeconds === undefined ? {} : { hold_seconds: o.holdSeconds }),
    });
  const commit = (reservation: string, amount?: number) =>
    post<Settled>("/api/usage/commit", amount === undefined ? { reservation } : { reservation, amount });
  const release = (reservation: string) => post<Settled>("/api/usage/release", { reservation });
  return {
    reserve,
    commit,
    release,
    consume: (buyer: Buyer, o: ReserveOptions = buyer as any) =>
      post<Consumed>("/api/usage/consume", { ...buyerFields(buyer), meter: o.meter, amount: o.amount, idempotency_key: o.idempotencyKey }),
    async withUsage(options: Buyer & ReserveOptions, work: (reservation: Reservation) => any) {
      const held = await reserve(options);
      let result;
      try {
        result = await work(held);
      } catch (error) {
        await release(held.reservation).catch(() => undefined);
        throw error;
      }
      // A number, an object's amount, or all; NaN (an object without amount, not a number) is all.
      const used = Math.max(0, Math.floor(Math.min(result?.amount ?? result ?? held.reserved, held.reserved)));
      await (used === 0 ? release(held.reservation) : commit(held.reservation, used || held.reserved));
      return result?.value;
    },
  };
}
