//! The English the buyer pages say about plans, money and dates, in one place: a
//! translation later replaces this file. Amounts are written with the currency's symbol and
//! its ISO 4217 minor units (`iso_currency`), dates in words (`6 January 2027`, UTC) inside a
//! `<time>` element whose `datetime` carries the exact value.

use iso_currency::Currency;
use llmxt_domain::time::{format_date, format_rfc3339};

use crate::pages::escape_html;

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
        if index > 0 && (digits.len() - index) % 3 == 0 {
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
/// `date` is a [`date_html`]).
pub fn scheduled_until(date: &str, current: &str) -> String {
    format!(
        "The switch happens on {date}, your next billing date. Until then you keep {current} and everything it includes; nothing is charged today."
    )
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

#[cfg(test)]
mod tests {
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
    fn dates_carry_the_exact_instant() {
        assert_eq!(
            date_html("effective", 1_799_195_851),
            "<time id=\"effective\" datetime=\"2027-01-06T00:37:31Z\">6 January 2027</time>"
        );
    }
}
