//! A generator of fake "mailer-daemon" phishing mails for measuring the learned filter: the
//! kinds such mail comes in (held messages to release, quota warnings, account verification,
//! "failed delivery" with a document to open, password expiry), each in wording written here
//! and combined from parts, in the forms it takes (plain text, HTML alternative, a fake
//! delivery-status report, a fake quoted original, an attachment). Some carry a status code
//! and no credential phrase, so the deterministic checks leave them `unknown`.
//!
//! Must not: copy text from the corpus; everything here is written for this file.

/// A small deterministic generator (splitmix64), so that the set is the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0xD1B5_4A32_D192_ED03))
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SENDERS: &[&str] = &[
    "Mail Delivery System <MAILER-DAEMON@{victim}>",
    "Mail Delivery Subsystem <mailer-daemon@{victim}>",
    "Postmaster <postmaster@{victim}>",
    "{Victim} Mail Server <no-reply@{victim}>",
    "Email Administrator <admin@{victim}>",
    "Mailbox Support <mailer-daemon@mail-support-desk.example>",
    "MAILER-DAEMON <mailer-daemon@secure-mailgate.example>",
    "Webmail Notification <notify@{victim}>",
    "IT Helpdesk <helpdesk@{victim}>",
    "Microsoft Outlook <postmaster@outlook-notice.example>",
];

const SUBJECTS: &[&str] = &[
    "Undelivered Mail Returned to Sender",
    "Delivery Status Notification (Failure)",
    "Mail delivery failed: {n} messages pending",
    "Undeliverable: incoming messages on hold",
    "Returned mail: mailbox quota exceeded",
    "Message delivery has been suspended for {user}",
    "Action required: {n} undelivered emails",
    "Failure notice: your mailbox is almost full",
    "Delivery failure - messages held in quarantine",
    "Notice: storage limit reached ({pct}%)",
    "[{victim}] Mail delivery incomplete",
    "Your outgoing messages were not sent",
];

const OPENINGS: &[&str] = &[
    "Dear {user},",
    "Hello {user},",
    "Attention {address}",
    "This is an automated message from the {victim} mail server.",
    "Mail system notice for {address}:",
    "",
];

/// What went "wrong", per kind.
const QUOTA: &[&str] = &[
    "Your mailbox has reached {pct}% of its storage limit. {n} new messages could not be delivered and are waiting on the server.",
    "The storage assigned to {address} is full. Incoming mail is being returned to the senders until space is added.",
    "Because your quota was exceeded, {n} messages addressed to you were bounced back. Increase your storage to keep receiving mail.",
    "We noticed your mailbox size is over the allowed limit. Delivery of new mail has been paused.",
];
const HELD: &[&str] = &[
    "{n} incoming messages were placed on hold by the mail server and have not reached your inbox.",
    "Our system stopped {n} emails sent to {address} because your account needs to be updated.",
    "Several messages could not be delivered to your inbox due to a synchronisation error on {date}.",
    "{n} pending emails are waiting for your approval before they can be delivered.",
];
const VERIFY: &[&str] = &[
    "Your email account must be validated to continue sending and receiving mail.",
    "We were unable to deliver your last message because your account details are out of date.",
    "Outgoing mail from {address} has been blocked after unusual activity was detected.",
    "Your mailbox will be disabled within 24 hours unless it is confirmed.",
];
const DOCUMENT: &[&str] = &[
    "A message sent to you could not be displayed. The original document is attached for your review.",
    "The message below failed to deliver in full. Open the attached file to read the returned content.",
    "An invoice sent to {address} was returned undelivered. A copy is included with this notice.",
];
const EXPIRY: &[&str] = &[
    "The password for {address} expires today. Mail delivery will stop once it has expired.",
    "Your login credentials are due for renewal; messages will be rejected until this is done.",
    "For your security, the password of this mailbox must be changed every 90 days.",
];

const ACTIONS: &[&str] = &[
    "To restore delivery, go to {link}",
    "Click here to release your messages: {link}",
    "Review the held messages at {link}",
    "Upgrade your storage now: {link}",
    "Please confirm your account at {link} to avoid interruption.",
    "Sign in to your mailbox to continue: {link}",
    "Visit {link} and follow the instructions.",
    "Use the secure link below to fix this:\n{link}",
    "Re-validate your mailbox here: {link}",
    "Open the attachment for details.",
];

const CLOSINGS: &[&str] = &[
    "Regards,\nThe Mail Team",
    "Thank you,\n{Victim} IT Support",
    "This message was sent automatically. Please do not reply.",
    "Mail Administrator",
    "(c) {victim} Email Services",
    "",
];

const LINK_HOSTS: &[&str] = &[
    "https://{victim}.mailbox-restore.example/login?u={user}",
    "http://webmail-{victim2}.cloud-portal.example/auth",
    "https://storage-upgrade.example/{victim2}/quota",
    "https://secure-verify-mail.example/?id={n}{pct}",
    "http://203.0.113.{n}/owa/release.php",
    "https://docs-share-view.example/file/{n}",
    "https://mail.{victim}.account-check.example/",
    "www.quota-{victim2}-help.example",
];

const FAKE_DIAGNOSTICS: &[&str] = &[
    "552 5.2.2 mailbox full",
    "550 5.7.1 message on hold",
    "452 4.2.2 over quota",
    "554 5.7.0 account verification required",
    "421 4.4.2 connection dropped",
];

fn fill(t: &str, v: &Vars) -> String {
    t.replace("{victim}", &v.victim)
        .replace("{Victim}", &v.victim_title)
        .replace("{victim2}", &v.victim.replace('.', "-"))
        .replace("{user}", &v.user)
        .replace("{address}", &v.address)
        .replace("{n}", &v.n.to_string())
        .replace("{pct}", &v.pct.to_string())
        .replace("{date}", "Monday")
}

struct Vars {
    victim: String,
    victim_title: String,
    user: String,
    address: String,
    n: u64,
    pct: u64,
}

const VICTIMS: &[&str] =
    &["shop.test", "example-corp.test", "northwind.test", "contoso-mail.test", "fabrikam.test", "acme-mail.test"];
const USERS: &[&str] = &["alice", "bob", "orders", "info", "sales", "j.doe", "support", "admin", "billing"];

/// The `n`th phishing notice (deterministic).
pub fn phishing(n: u64) -> Vec<u8> {
    let mut r = Rng::new(n);
    let victim = r.pick(VICTIMS).to_string();
    let user = r.pick(USERS).to_string();
    let v = Vars {
        victim_title: {
            let mut c = victim.chars();
            c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
        },
        address: format!("{user}@{victim}"),
        victim,
        user,
        n: 2 + r.below(40),
        pct: 90 + r.below(10),
    };
    let kind = r.below(5);
    let problem = match kind {
        0 => r.pick(QUOTA),
        1 => r.pick(HELD),
        2 => r.pick(VERIFY),
        3 => r.pick(DOCUMENT),
        _ => r.pick(EXPIRY),
    };
    let link = fill(r.pick(LINK_HOSTS), &v);
    let action = fill(r.pick(ACTIONS), &v).replace("{link}", &link);
    let text = format!(
        "{}\n\n{}\n\n{}\n\n{}\n",
        fill(r.pick(OPENINGS), &v),
        fill(problem, &v),
        action,
        fill(r.pick(CLOSINGS), &v)
    )
    .replace('\n', "\r\n");
    let from = fill(r.pick(SENDERS), &v);
    let subject = fill(r.pick(SUBJECTS), &v);
    let relay = format!("mta{}.bulk-relay-{}.example", r.below(90), r.below(9));
    let mut head = format!(
        "Received: from {relay} ({relay} [198.51.100.{}]) by mx.{} (mailerd) with ESMTP id G{n}; Sat, 28 Nov 2026 10:{:02}:00 +0000\r\n\
         From: {from}\r\nTo: {}\r\nSubject: {subject}\r\nDate: Sat, 28 Nov 2026 10:{:02}:00 +0000\r\nMessage-ID: <{n}.{}@{relay}>\r\nMIME-Version: 1.0\r\n",
        r.below(250) + 1,
        v.victim,
        r.below(60),
        v.address,
        r.below(60),
        r.next() % 100_000
    );
    let form = r.below(5);
    let body = match form {
        // Plain text.
        0 => {
            head.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
            text
        }
        // HTML alternative.
        1 => {
            head.push_str("Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n");
            let html = text.replace("\r\n\r\n", "</p><p>").replace(&link, &format!("<a href=\"{link}\">{link}</a>"));
            format!(
                "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>{html}</p></body></html>\r\n--alt--\r\n"
            )
        }
        // A fake delivery-status report, status code and all.
        2 => {
            head.push_str("Content-Type: multipart/report; report-type=delivery-status; boundary=\"rep\"\r\n\r\n");
            let diag = r.pick(FAKE_DIAGNOSTICS);
            let status = diag.split(' ').nth(1).unwrap_or("5.0.0");
            format!(
                "--rep\r\nContent-Type: text/plain\r\n\r\n{text}\r\n--rep\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; {relay}\r\n\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {status}\r\nDiagnostic-Code: smtp; {diag}\r\n--rep--\r\n",
                v.address
            )
        }
        // A fake quoted original after the notice, with a status line.
        3 => {
            head.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
            format!(
                "{text}\r\n<{}>: {}\r\n\r\n------ Original message ------\r\nFrom: {}\r\nSubject: Re: your request\r\n\r\n(content not shown)\r\n",
                v.address,
                r.pick(FAKE_DIAGNOSTICS),
                v.address
            )
        }
        // An attachment.
        _ => {
            head.push_str("Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n");
            let name = r.pick(&["returned_message.html", "Document.pdf.html", "invoice.zip", "held_mail.htm"]);
            let ctype = if name.ends_with(".zip") { "application/zip" } else { "text/html" };
            format!(
                "--mix\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--mix\r\nContent-Type: {ctype}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\nPGh0bWw+PGJvZHk+PC9ib2R5PjwvaHRtbD4=\r\n--mix--\r\n"
            )
        }
    };
    format!("{head}{body}").into_bytes()
}
