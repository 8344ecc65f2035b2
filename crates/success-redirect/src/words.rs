//! Every word the buyer pages and the sign-in email say, in one place: a translation later
//! replaces this file. Amounts are written with the currency's symbol and
//! its ISO 4217 minor units (`iso_currency`), dates in words (`6 January 2027`, UTC) inside a
//! `<time>` element whose `datetime` carries the exact value.

use iso_currency::Currency;
use llmxt_domain::time::{format_date, format_rfc3339};

use crate::html::escape_html;

// The plan-change summary, and the pages of a payment that gives no access.

/// The plan-change page's heading.
pub const CHANGE_PLAN_TITLE: &str = "Change your plan";
/// The label of the amount charged when the buyer confirms.
pub const DUE_TODAY: &str = "Due today";
/// The label of the recurring price after the change.
pub const THEN: &str = "Then";
/// The label of the card Dodo charges.
pub const CARD: &str = "Card";
/// The link that leaves a page without doing anything.
pub const CANCEL: &str = "Cancel";
/// The heading of the page for a buyer who already has the plan they asked to switch to.
pub const ON_THIS_PLAN_TITLE: &str = "You are on this plan";
/// `/upgrade/plan` without a sign-in: the heading.
pub const SIGN_IN_TO_CHANGE_TITLE: &str = "Sign in to change your plan";
/// `/upgrade/plan` without a sign-in: the text.
pub const SIGN_IN_TO_CHANGE_TEXT: &str = "This browser is not signed in. Get a sign-in link by email, then open this page again to change your plan.";

/// A declined or failed payment: the heading.
pub const FAILED_TITLE: &str = "Your payment did not go through";
/// A declined or failed payment: the text.
pub const FAILED_TEXT: &str = "The payment was declined or failed, so nothing was charged and no access was given. You can try again, with the same card or another one.";
/// A cancelled checkout: the heading.
pub const CANCELLED_TITLE: &str = "The payment was cancelled";
/// A cancelled checkout: the text.
pub const CANCELLED_TEXT: &str = "The checkout was cancelled before the payment was made, so nothing was charged. You can start again whenever you like.";
/// A refunded or reversed payment: the heading.
pub const REFUNDED_TITLE: &str = "This payment was refunded";
/// A refunded or reversed payment: the text.
pub const REFUNDED_TEXT: &str = "The payment was refunded or reversed by the bank, so it no longer gives access. If you did not expect this, reply to your receipt email or contact the site's support.";
/// The primary action after a failed or cancelled payment.
pub const TRY_AGAIN: &str = "Try again";
/// The secondary action after a failed or cancelled payment.
pub const PAID_SIGN_IN: &str = "I was charged: get a sign-in link";
/// The action that goes back to the site.
pub const GO_TO_SITE: &str = "Go to the site";

/// A used sign-in link opened again in the browser it signed in: the heading.
pub const SIGNED_IN_TITLE: &str = "You're signed in";

/// A used sign-in link opened again in the browser it signed in: the text (plain text).
pub fn signed_in_text(email: &str) -> String {
    format!(
        "This sign-in link has already been used, in this browser: you are signed in here as {email}. There is nothing more to do."
    )
}

// Money, periods, dates and cards.

/// Plain text: `amount` (in the currency's smallest unit) with the currency's symbol and minor units:
/// `$20.00`, `€20.00`, `¥2,000`, `-$5.00`. A dollar other than the US one is told apart by
/// its country (`CA$20.00`); a code `iso_currency` does not know is written after the
/// amount, with two decimals (`20.00 XYZ`).
pub fn money(amount: i64, currency: &str) -> String {
    let code = currency.trim().to_ascii_uppercase();
    let known = Currency::from_code(&code);
    let exponent = known.and_then(Currency::exponent).map_or(2, u32::from);
    let sign = if amount < 0 { "-" } else { "" };
    let amount = amount.unsigned_abs();
    let unit = 10u64.pow(exponent);
    let whole = group_thousands(amount / unit);
    let number = if exponent == 0 {
        whole
    } else {
        format!(
            "{whole}.{:0width$}",
            amount % unit,
            width = exponent as usize
        )
    };
    match known {
        Some(currency) => {
            let symbol = currency.symbol().symbol;
            let symbol = if symbol == "$" && code != "USD" {
                format!("{}$", &code[..2])
            } else if symbol.is_empty() || symbol == "¤" {
                return format!("{sign}{number} {code}");
            } else {
                symbol
            };
            format!("{sign}{symbol}{number}")
        }
        None => format!("{sign}{number} {code}"),
    }
}

fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// How often a price recurs, from Dodo's `payment_frequency_interval` and
/// `payment_frequency_count`: `a month`, `every 3 months`, `a year`.
pub fn period(interval: &str, count: i64) -> String {
    let unit = match interval.to_ascii_lowercase().as_str() {
        "day" => "day",
        "week" => "week",
        "month" => "month",
        "year" => "year",
        _ => "period",
    };
    if count <= 1 {
        format!("a {unit}")
    } else {
        format!("every {count} {unit}s")
    }
}

/// A date in words inside `<time datetime="…">` carrying the exact instant (HTML).
pub fn date_html(id: &str, unix_seconds: i64) -> String {
    format!(
        "<time id=\"{}\" datetime=\"{}\">{}</time>",
        escape_html(id),
        escape_html(&format_rfc3339(unix_seconds)),
        escape_html(&format_date(unix_seconds))
    )
}

/// A card network as buyers know it: `VISA` → `Visa`, `AMEX` → `American Express`.
pub fn card_network(network: &str) -> String {
    match network
        .trim()
        .to_ascii_lowercase()
        .replace(['_', '-'], " ")
        .as_str()
    {
        "amex" | "american express" | "americanexpress" => "American Express".to_owned(),
        "mastercard" | "master card" => "Mastercard".to_owned(),
        "unionpay" | "union pay" => "UnionPay".to_owned(),
        "jcb" => "JCB".to_owned(),
        "rupay" => "RuPay".to_owned(),
        other => other
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(|word| {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The card line: `Visa ending in 4242`.
pub fn card_line(network: &str, last_four: &str) -> String {
    format!("{} ending in {last_four}", card_network(network))
}

// The plan-change summary's sentences, and the pages around it.

/// The plan-change button: what pressing it does.
pub fn change_button(charged_now: Option<&str>, scheduled_for: Option<&str>) -> String {
    match (scheduled_for, charged_now) {
        (Some(date), _) => format!("Switch on {date}"),
        (None, Some(amount)) => format!("Pay {amount} and switch"),
        (None, None) => "Switch now".to_owned(),
    }
}

/// The recurring price after the change (HTML; `from` is a [`date_html`]).
pub fn then_price(price: &str, period: &str, from: Option<&str>) -> String {
    match from {
        Some(from) => format!("{price} {period} from {from}"),
        None => format!("{price} {period}"),
    }
}

/// What a scheduled downgrade keeps until it happens (HTML; names are escaped by the caller,
/// `date` is a [`date_html`], or `None` when Dodo gave no date).
pub fn scheduled_until(date: Option<&str>, current: &str) -> String {
    let keeps = format!(
        "Until then you keep {current} and everything it includes; nothing is charged today."
    );
    match date {
        Some(date) => format!("The switch happens on {date}, your next billing date. {keeps}"),
        None => format!("The switch happens on your next billing date. {keeps}"),
    }
}

/// What an immediate change does (HTML; the name is escaped by the caller).
pub fn starts_now(new: &str) -> String {
    format!("{new} starts as soon as you confirm.")
}

/// "Your subscription is already on Pro." (HTML; the name is escaped by the caller).
pub fn already_on(plan: &str) -> String {
    format!("Your subscription is already on {plan}.")
}

/// Checkout for a plan the buyer already has: the heading (plain text).
pub fn already_have_title(plan: &str) -> String {
    format!("You already have {plan}")
}

/// Checkout for a plan the buyer already has: the text (plain text).
pub fn already_have_text(email: &str, plan: &str) -> String {
    format!(
        "This browser is signed in as {email}, which already has {plan}. Buying again would charge you a second time."
    )
}

/// A lifetime buyer on the plan-change page: the heading.
pub const LIFETIME_TITLE: &str = "Your access is for life";
/// The link back to the site inside a page's text.
pub const BACK_TO_SITE: &str = "Back to the site";

/// A lifetime buyer on the plan-change page: the text (plain text).
pub fn lifetime_text(plan: &str) -> String {
    format!(
        "You bought lifetime access, which has no plan to change. To get {plan}, buy it as a new purchase."
    )
}

/// A lifetime buyer on the plan-change page: the checkout link (plain text).
pub fn buy_plan(plan: &str) -> String {
    format!("Buy {plan}")
}

/// One subscription in the "Which subscription?" list (plain text).
pub fn subscription_choice(plan: &str, subscription_id: &str) -> String {
    format!("{plan} (subscription {subscription_id})")
}

/// The language of every page and email (`<html lang>`).
pub const LANG: &str = "en";

// The shell around every page, and its pieces.

/// The footer's support line (HTML; `link` is the escaped contact link).
pub fn questions_contact(link: &str) -> String {
    format!("Questions? Contact {link}.")
}

/// The footer's link back to the site (HTML; the name is escaped by the caller).
pub fn back_to(name: &str) -> String {
    format!("Back to {name}")
}

/// A support sentence inside a page's text: `lead` ("If that does not work,") then the
/// contact (HTML; both escaped by the caller).
pub fn lead_contact(lead: &str, link: &str) -> String {
    format!("{lead} contact {link}.")
}

/// How long until `seconds` have passed, in words ("30 seconds", "1 minute", "45 minutes").
pub fn wait(seconds: i64) -> String {
    let seconds = seconds.max(1);
    if seconds < 90 {
        return format!("{seconds} second{}", if seconds == 1 { "" } else { "s" });
    }
    let minutes = (seconds + 59) / 60;
    format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
}

/// The link to the site's checkout beside a message.
pub const GO_TO_CHECKOUT: &str = "Go to checkout";
/// The action that sends the buyer to the sign-in form.
pub const GET_SIGN_IN_LINK: &str = "Get a sign-in link by email";
/// Cookies of several emails in one browser: the heading.
pub const SEVERAL_ACCOUNTS_TITLE: &str = "Sign in to continue";
/// Cookies of several emails in one browser: the text.
pub const SEVERAL_ACCOUNTS_TEXT: &str = "This browser holds access for more than one email address, so we cannot tell which one is yours. Ask for a sign-in link: we send it to the email address you paid with.";
/// An unknown `/upgrade/*` address: the heading.
pub const NOT_FOUND_TITLE: &str = "Page not found";
/// An unknown `/upgrade/*` address: the text.
pub const NOT_FOUND_TEXT: &str =
    "There is no page at this address. The link may be mistyped or out of date.";

// The restore (sign-in link) pages.

/// The restore form's heading, and the link to it.
pub const RESTORE_TITLE: &str = "Restore access on this device";
/// The restore form without a sender: the text.
pub const RESTORE_DISABLED_TEXT: &str = "Sign-in links by email are not enabled on this site.";
/// The restore form without a sender: the lead of the support sentence.
pub const RESTORE_DISABLED_SUPPORT: &str = "To restore your access,";
/// The restore form: the text above the field.
pub const RESTORE_FORM_TEXT: &str =
    "Enter the email address you paid with. We send a one-time sign-in link to it.";
/// The restore form: the field's label.
pub const EMAIL_LABEL: &str = "Email address";
/// The restore form: the button.
pub const SEND_SIGN_IN_LINK: &str = "Send me a sign-in link";

/// The answer to every sign-in link request, whether or not a purchase exists (plain text).
pub fn restore_sent(valid_minutes: i64) -> String {
    format!(
        "If a purchase exists for that address, we have sent a sign-in link. It works once, for {valid_minutes} minutes. Check your inbox (and spam folder)."
    )
}

/// A sign-in request posted from another site: the heading.
pub const CROSS_SITE_TITLE: &str = "This form must be sent from this site";
/// A sign-in request posted from another site: the error.
pub const CROSS_SITE_ALERT: &str =
    "For your security, sign-in requests are accepted only from this site's own pages.";
/// A sign-in request posted from another site: the link to the form.
pub const OPEN_SIGN_IN_PAGE: &str = "Open the sign-in page";

/// Too many sign-in links for one address (plain text; `wait` is a [`wait`]).
pub fn too_many_links_for_address(wait: &str) -> String {
    format!(
        "Too many sign-in links were asked for this address from your network in the last hour. The latest link sent still works: check your inbox (and spam folder), or try again in {wait}."
    )
}

/// Too many sign-in links from one network (plain text; `wait` is a [`wait`]).
pub fn too_many_links_from_network(wait: &str) -> String {
    format!(
        "Too many sign-in links were asked for from your network in the last hour. The latest link sent still works: check your inbox (and spam folder), or try again in {wait}."
    )
}

/// The page a sign-in link opens (and the sign-in email's heading).
pub const SIGN_IN_HERE_TITLE: &str = "Sign in on this device";
/// The page a sign-in link opens: the text.
pub const SIGN_IN_HERE_TEXT: &str = "Press the button to restore your access in this browser.";
/// The page a sign-in link opens: the button.
pub const SIGN_IN: &str = "Sign in";
/// A sign-in link that is invalid, used or expired.
pub const SIGN_IN_LINK_INVALID: &str =
    "This sign-in link is invalid or has expired. Ask for a new one below.";

// The success page (`/upgrade/success`).

/// A purchase link opened in a browser signed in as someone else: the heading.
pub const SWITCH_TITLE: &str = "Switch to the account that just paid?";
/// A purchase link opened in a browser signed in as someone else: the text.
pub const SWITCH_TEXT: &str = "This browser is signed in with another email address than the purchase this link is for. Switch this browser to the purchase only if you just paid. If you did not open this link yourself, stay signed in as you are.";
/// A purchase link opened in a browser signed in as someone else: the button.
pub const SWITCH_BUTTON: &str = "Switch to this purchase";
/// A purchase link opened in a browser signed in as someone else: the other way.
pub const STAY_SIGNED_IN: &str = "Stay signed in as I am";
/// A success link that names no payment: the heading.
pub const INVALID_LINK_TITLE: &str = "This link is not valid";
/// A success link that names no payment: the text.
pub const INVALID_LINK_TEXT: &str =
    "It does not name a payment. If you have just paid, use the link from your receipt email.";
/// A success link that names no payment: the lead of the support sentence.
pub const INVALID_LINK_SUPPORT: &str = "If that does not work,";
/// The page a prefetch gets: the heading.
pub const CONTINUE_TITLE: &str = "Finishing your purchase…";
/// The page a prefetch gets: the text.
pub const CONTINUE_TEXT: &str = "One moment: this page continues by itself.";
/// The page a prefetch gets: the button.
pub const CONTINUE: &str = "Continue";
/// A purchase link already redeemed: the heading.
pub const LINK_USED_TITLE: &str = "This purchase link was already used";
/// A purchase link already redeemed: the text.
pub const LINK_USED_TEXT: &str = "Access from this link was already set up, perhaps in another browser or tab. If that was you, you are done. On another device, ask for a sign-in link: we send it to the email address you paid with.";
/// The link of a renewal: the heading.
pub const RENEWED_TITLE: &str = "Your subscription was renewed";
/// The link of a renewal: the text.
pub const RENEWED_TEXT: &str = "Access continues by itself on every device you already use. On a new device, ask for a sign-in link: we send it to the email address you paid with.";
/// Heading when a credit pack (`PRODUCT_CREDITS`) was paid: it opens no claim.
pub const CREDITS_ADDED_TITLE: &str = "Your credits are added";
/// Text under [`CREDITS_ADDED_TITLE`].
pub const CREDITS_ADDED_TEXT: &str = "They are ready to use on the site, on every device you already use. Credits are spent after your plan's allowance for the period runs out.";
/// A purchase link bound to another browser: the heading.
pub const OTHER_BROWSER_TITLE: &str = "This purchase was started in another browser";
/// A purchase link bound to another browser: the text.
pub const OTHER_BROWSER_TEXT: &str = "To protect your purchase, only the browser that opened the checkout can use this link, and it still can. To get access here instead, ask for a sign-in link: we send it to the email address you paid with.";
/// A purchase link past its time: the heading.
pub const LINK_EXPIRED_TITLE: &str = "This purchase link has expired";
/// A purchase link past its time: the text.
pub const LINK_EXPIRED_TEXT: &str = "For your security, a purchase link works for a few minutes only. Your purchase is safe: ask for a sign-in link, sent to the email address you paid with.";
/// No payment confirmation after about a minute: the heading.
pub const PENDING_TIMEOUT_TITLE: &str = "We have not received the payment confirmation yet";
/// No payment confirmation after about a minute: the text.
pub const PENDING_TIMEOUT_TEXT: &str = "If you were charged, your access is activated as soon as the confirmation arrives: reload this page in a few minutes, or ask for a sign-in link by email later, from any device.";
/// No payment confirmation after about a minute: the lead of the support sentence.
pub const PENDING_TIMEOUT_SUPPORT: &str =
    "If it still does not work, mention the reference shown in the address bar and";
/// Waiting for the payment confirmation: the heading.
pub const PENDING_TITLE: &str = "Confirming your payment…";
/// Waiting for the payment confirmation: the text.
pub const PENDING_TEXT: &str =
    "This usually takes a few seconds. This page checks again by itself; please keep it open.";
/// Waiting for the payment confirmation: the button.
pub const CHECK_AGAIN: &str = "Check again";

// Billing (`/upgrade/billing`).

/// Billing without a sign-in that proves the mailbox: the heading.
pub const BILLING_SIGN_IN_TITLE: &str = "Sign in to manage billing";
/// Billing in a browser that is not signed in: the text.
pub const BILLING_SIGNED_OUT_TEXT: &str = "Invoices and your subscription are managed from a browser where you have access, and this browser is not signed in. Ask for a sign-in link: we send it to the email address you paid with. Then open Manage billing again.";
/// Billing with a purchase cookie only: the text.
pub const BILLING_PURCHASE_ONLY_TEXT: &str = "This browser has access through a purchase link, but the billing portal shows every purchase and subscription of your email address. To open it, ask for a sign-in link: we send it to the email address you paid with.";
/// The page a prefetch of billing gets: the heading.
pub const BILLING_TITLE: &str = "Billing";
/// The page a prefetch of billing gets: the text.
pub const BILLING_OPENING: &str = "Opening the billing portal…";
/// Billing without Dodo's API: the heading.
pub const BILLING_UNAVAILABLE_TITLE: &str = "Billing is not available here";
/// Billing without Dodo's API: the text.
pub const BILLING_UNAVAILABLE_TEXT: &str = "This site has not connected its billing portal.";
/// Billing without Dodo's API: the lead of the support sentence.
pub const BILLING_UNAVAILABLE_SUPPORT: &str = "For invoices or to cancel,";
/// Billing for an email with nothing current: the heading.
pub const BILLING_NOTHING_TITLE: &str = "Nothing to manage here";
/// Billing for an email with nothing current: the text.
pub const BILLING_NOTHING_TEXT: &str = "No purchase of this email address gives access now or was refunded in the last 30 days, so there is no billing to manage here.";
/// Billing for access not bought through checkout: the heading.
pub const BILLING_NO_ACCOUNT_TITLE: &str = "No billing account";
/// Billing for access not bought through checkout: the text.
pub const BILLING_NO_ACCOUNT_TEXT: &str = "Your access was not bought through our checkout (for example, it was granted by support), so there are no invoices or subscription to manage here.";
/// Dodo did not open the portal: the heading.
pub const BILLING_DOWN_TITLE: &str = "The billing portal could not be opened";
/// Dodo did not open the portal: the text.
pub const BILLING_DOWN_TEXT: &str =
    "Our payment provider did not answer. Please try again in a moment.";
/// Billing over a budget: the heading.
pub const BILLING_BUSY_TITLE: &str = "Billing is busy";

/// Billing over a budget: the text (plain text; `wait` is a [`wait`]).
pub fn billing_busy_text(wait: &str) -> String {
    format!("The billing portal was opened too often just now. Please try again in {wait}.")
}

// Plan changes (`/upgrade/plan`), beside the summary's words above.

/// A plan-change link for a product not sold here: the heading.
pub const UNKNOWN_PLAN_TITLE: &str = "Unknown plan";
/// A plan-change link for a product not sold here: the text.
pub const UNKNOWN_PLAN_TEXT: &str = "This link does not name a plan sold here.";
/// A sign-in that covers no active subscription: the heading.
pub const NO_SUBSCRIPTION_TITLE: &str = "No subscription to change here";
/// A sign-in that covers no active subscription: the text.
pub const NO_SUBSCRIPTION_TEXT: &str = "The sign-in in this browser does not cover an active subscription. Sign in with the email you subscribed with.";
/// Plan changes without Dodo's API: the heading.
pub const PLAN_UNAVAILABLE_TITLE: &str = "Plan changes are not available here";
/// Plan changes without Dodo's API: the text.
pub const PLAN_UNAVAILABLE_TEXT: &str =
    "This site has not connected its payment provider. Contact support to change your plan.";
/// The page a prefetch of the return from Dodo gets: the heading.
pub const PLAN_CHANGE_TITLE: &str = "Plan change";
/// The page a prefetch of the return from Dodo gets: the text.
pub const PLAN_CHECKING: &str = "Checking your plan…";
/// The page a prefetch of the plan-change page gets: the heading.
pub const CHANGE_PLAN_PREFETCH_TITLE: &str = "Change plan";
/// The page a prefetch of the plan-change page gets: the text.
pub const PLAN_PREPARING: &str = "Preparing your plan change…";
/// Plan changes over a budget: the heading.
pub const PLAN_BUSY_TITLE: &str = "Plan changes are busy";

/// Plan changes over a budget: the text (plain text; `wait` is a [`wait`]).
pub fn plan_busy_text(wait: &str) -> String {
    format!(
        "Too many plan changes were prepared just now. Nothing was changed. Please try again in {wait}."
    )
}

/// A plan change posted from another site: the heading.
pub const PLAN_REFUSED_TITLE: &str = "Request refused";
/// A plan change posted from another site: the text.
pub const PLAN_REFUSED_TEXT: &str = "Change your plan from the plan page on this site.";
/// A scheduled downgrade whose date Dodo did not give: the button.
pub const SWITCH_AT_NEXT_BILLING: &str = "Switch at the next billing date";
/// Several subscriptions to choose from: the heading.
pub const CHOOSE_TITLE: &str = "Which subscription?";
/// Several subscriptions to choose from: the text.
pub const CHOOSE_TEXT: &str = "You have several subscriptions. Choose the one to change:";
/// Dodo did not prepare the change: the heading.
pub const PLAN_DOWN_TITLE: &str = "The plan change could not be prepared";
/// Dodo did not prepare the change: the text.
pub const PLAN_DOWN_TEXT: &str =
    "Our payment provider did not answer. Nothing was changed; please try again in a moment.";

// Checkout (`/upgrade/checkout`).

/// A checkout link for a product not sold here: the heading.
pub const UNKNOWN_PRODUCT_TITLE: &str = "Unknown product";
/// A checkout link for a product not sold here: the text.
pub const UNKNOWN_PRODUCT_TEXT: &str = "This checkout link does not name a product on sale here.";
/// A checkout link with a malformed email: the heading.
pub const BAD_EMAIL_TITLE: &str = "That email address is not valid";
/// A checkout link with a malformed email: the text.
pub const BAD_EMAIL_TEXT: &str =
    "Go back and check the address, or leave it out: the checkout asks for it.";
/// Checkout with neither Dodo's API nor a checkout link: the heading.
pub const CHECKOUT_UNAVAILABLE_TITLE: &str = "Checkout is not available";
/// Checkout with neither Dodo's API nor a checkout link: the text.
pub const CHECKOUT_UNAVAILABLE_TEXT: &str = "This site has not configured its checkout yet.";
/// The page a prefetch of checkout gets: the heading.
pub const CHECKOUT_TITLE: &str = "Checkout";
/// The page a prefetch of checkout gets: the text.
pub const CHECKOUT_OPENING: &str = "Opening the checkout…";
/// Checkout over a budget: the heading.
pub const CHECKOUT_BUSY_TITLE: &str = "Checkout is busy";

/// Checkout over a budget: the text (plain text; `wait` is a [`wait`]).
pub fn checkout_busy_text(wait: &str) -> String {
    format!(
        "Too many checkouts were opened just now. Nothing was charged. Please try again in {wait}."
    )
}

/// Dodo did not create the checkout: the heading.
pub const CHECKOUT_DOWN_TITLE: &str = "The checkout could not be opened";
/// Dodo did not create the checkout: the text.
pub const CHECKOUT_DOWN_TEXT: &str = "Our payment provider did not answer. Nothing was charged.";
/// The link to the billing portal.
pub const MANAGE_BILLING: &str = "Manage billing";
/// A deliberate second purchase of a plan the buyer has.
pub const BUY_ANYWAY: &str = "Buy anyway";

// The sign-in email.

/// The sign-in email's subject (plain text).
pub fn sign_in_subject(brand: &str) -> String {
    format!("Your sign-in link for {brand}")
}

/// Why the sign-in email came (`site` is plain text, or HTML escaped by the caller).
pub fn asked_to_restore(site: &str) -> String {
    format!("Someone, hopefully you, asked to restore access on {site}.")
}

/// The text part's instruction above the link.
pub fn open_within(minutes: i64) -> String {
    format!(
        "Open this link within {minutes} minutes and press the button to sign in on that device:"
    )
}

/// The HTML part's button (HTML; the name is escaped by the caller).
pub fn sign_in_to(brand: &str) -> String {
    format!("Sign in to {brand}")
}

/// The HTML part's line below the button.
pub fn link_works_once(minutes: i64) -> String {
    format!("The link works once, for {minutes} minutes; press the button on the page it opens.")
}

/// The sign-in email's reassurance for a recipient who did not ask.
pub const IGNORE_IF_UNASKED: &str =
    "If you did not ask for this, ignore this email: nothing changes without the link.";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn money_uses_the_currency_symbol_and_minor_units() {
        assert_eq!(money(2000, "USD"), "$20.00");
        assert_eq!(money(2000, "eur"), "€20.00");
        assert_eq!(money(2000, "JPY"), "¥2,000");
        assert_eq!(money(123_456_789, "GBP"), "£1,234,567.89");
        assert_eq!(money(-500, "USD"), "-$5.00");
        assert_eq!(money(5, "USD"), "$0.05");
        assert_eq!(money(2000, "CAD"), "CA$20.00");
        assert_eq!(money(1234, "KWD"), "د.ك1.234");
        assert_eq!(money(2000, "XYZ"), "20.00 XYZ");
        assert_eq!(
            money(2000, "<b>"),
            "20.00 <B>",
            "plain text: escaped where it is used"
        );
        assert_eq!(money(i64::MIN, "USD"), "-$92,233,720,368,547,758.08");
    }

    #[test]
    fn periods_and_cards_read_as_words() {
        assert_eq!(period("Month", 1), "a month");
        assert_eq!(period("Year", 1), "a year");
        assert_eq!(period("Week", 2), "every 2 weeks");
        assert_eq!(card_line("VISA", "4242"), "Visa ending in 4242");
        assert_eq!(card_network("AMEX"), "American Express");
        assert_eq!(card_network("cartes bancaires"), "Cartes Bancaires");
        assert_eq!(wait(0), "1 second");
        assert_eq!(wait(30), "30 seconds");
        assert_eq!(wait(89), "89 seconds");
        assert_eq!(wait(90), "2 minutes");
        assert_eq!(wait(3600), "60 minutes");
    }

    #[test]
    fn the_button_names_what_happens() {
        assert_eq!(change_button(Some("$10.00"), None), "Pay $10.00 and switch");
        assert_eq!(
            change_button(Some("$0.00"), Some("6 January 2027")),
            "Switch on 6 January 2027"
        );
        assert_eq!(change_button(None, None), "Switch now");
    }

    #[test]
    fn a_scheduled_downgrade_says_when_once() {
        assert_eq!(
            scheduled_until(Some("6 January 2027"), "Business"),
            "The switch happens on 6 January 2027, your next billing date. Until then you keep Business and everything it includes; nothing is charged today."
        );
        let undated = scheduled_until(None, "Business");
        assert_eq!(
            undated,
            "The switch happens on your next billing date. Until then you keep Business and everything it includes; nothing is charged today."
        );
        assert_eq!(undated.matches("next billing date").count(), 1, "{undated}");
    }

    /// The code of a module, without its comments and its tests.
    fn code(source: &str) -> String {
        let source = source.split("#[cfg(test)]").next().unwrap_or_default();
        source
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Words a buyer would read, written in a route module instead of here: a literal (or a
    /// piece of HTML after a tag) that starts like an English sentence or label, e.g.
    /// `"Try again"` or `<p>Back to`, and every `Page::new("…")`.
    fn inline_english(source: &str) -> Vec<String> {
        let code = code(source);
        let bytes = code.as_bytes();
        let mut found = Vec::new();
        for (at, &byte) in bytes.iter().enumerate() {
            if byte != b'"' && byte != b'>' {
                continue;
            }
            let rest = &bytes[at + 1..];
            let word = rest
                .iter()
                .take_while(|b| b.is_ascii_alphabetic() || **b == b'\'')
                .count();
            let sentence = word >= 2
                && rest[0].is_ascii_uppercase()
                && rest[1..word].iter().all(u8::is_ascii_lowercase)
                && rest.get(word) == Some(&b' ')
                && rest.get(word + 1).is_some_and(u8::is_ascii_lowercase);
            if sentence {
                let end = rest
                    .iter()
                    .position(|b| *b == b'"' || *b == b'<')
                    .unwrap_or(rest.len());
                found.push(String::from_utf8_lossy(&rest[..end]).into_owned());
            }
        }
        found.extend(
            code.match_indices("Page::new(\"")
                .map(|(at, _)| code[at..].lines().next().unwrap_or_default().to_owned()),
        );
        found
    }

    #[test]
    fn route_modules_take_their_words_from_here() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut scanned = 0;
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".rs") || name == "words.rs" {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            assert_eq!(
                inline_english(&source),
                Vec::<String>::new(),
                "{name} writes its own words: move them to words.rs"
            );
            scanned += 1;
        }
        assert!(scanned >= 10, "every module of src/ is scanned ({scanned})");
        assert_eq!(
            inline_english(
                "fn page() { Page::new(\"Hello\").text(\"Try again\").html(\"<p>Back to it</p>\") }"
            ),
            [
                "Try again",
                "Back to it",
                "Page::new(\"Hello\").text(\"Try again\").html(\"<p>Back to it</p>\") }"
            ],
            "the scan finds what it looks for"
        );
    }

    #[test]
    fn dates_carry_the_exact_instant() {
        assert_eq!(
            date_html("effective", 1_799_195_851),
            "<time id=\"effective\" datetime=\"2027-01-06T00:37:31Z\">6 January 2027</time>"
        );
    }
}
