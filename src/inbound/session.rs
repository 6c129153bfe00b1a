//! The SMTP server state machine: which command may come next, and the envelope so far.
//!
//! Standards: RFC 5321 §4.1.4 (command order), §4.5.3.1.8 (recipients), RFC 2920 (a DATA after
//! only rejected recipients gets 554), RFC 3207 §4.2 (state is reset after STARTTLS).
//! Must not: do I/O, look anything up, or write reply text (it returns `inbound::replies`).

use super::replies;
use crate::smtp::address::ReversePath;
use crate::smtp::command::{MailParams, Notify};
use crate::smtp::reply::SmtpReply;
use crate::store::{Destination, NewRecipient, Transport};

/// One accepted RCPT, already resolved by policy.
#[derive(Debug, Clone)]
pub struct AcceptedRcpt {
    pub address: String,
    pub orcpt: Option<String>,
    pub notify: Option<Notify>,
    pub destination: Destination,
    /// Checklist findings to record as events of the message.
    pub notes: Vec<String>,
}

impl AcceptedRcpt {
    pub fn transport(&self) -> Transport {
        self.destination.transport()
    }
}

impl From<AcceptedRcpt> for NewRecipient {
    fn from(r: AcceptedRcpt) -> Self {
        NewRecipient { address: r.address, orcpt: r.orcpt, notify: r.notify, destination: r.destination }
    }
}

#[derive(Debug, Clone)]
pub struct Transaction {
    pub from: ReversePath,
    pub params: MailParams,
    pub rcpts: Vec<AcceptedRcpt>,
    /// RCPT commands refused so far (for the log line).
    pub refused: usize,
}

#[derive(Debug, Default)]
pub struct Session {
    pub helo: Option<String>,
    pub esmtp: bool,
    pub tls: bool,
    pub auth_user: Option<String>,
    /// The login may use any sender address (root's local programs, as on every Unix mailer).
    pub any_sender: bool,
    pub transaction: Option<Transaction>,
    pub errors: u32,
    /// NOOP, RSET, VRFY and HELP commands so far.
    pub junk: u32,
}

impl Session {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn greet(&mut self, helo: String, esmtp: bool) {
        self.helo = Some(helo);
        self.esmtp = esmtp;
        self.transaction = None;
    }

    /// Counts a junk command; true when it is beyond `limit` (and so counts as an error).
    pub fn junk(&mut self, limit: u32) -> bool {
        self.junk = self.junk.saturating_add(1);
        self.junk > limit
    }

    pub fn in_transaction(&self) -> bool {
        self.transaction.is_some()
    }

    pub fn may_mail(&self) -> Result<(), SmtpReply> {
        if self.helo.is_none() {
            return Err(replies::bad_sequence("send HELO/EHLO first"));
        }
        if self.transaction.is_some() {
            return Err(replies::bad_sequence("nested MAIL command"));
        }
        Ok(())
    }

    pub fn open(&mut self, from: ReversePath, params: MailParams) {
        self.transaction = Some(Transaction { from, params, rcpts: Vec::new(), refused: 0 });
    }

    /// Checks that a RCPT may come now and that the recipient limit is not reached.
    pub fn may_rcpt(&self, max_recipients: usize) -> Result<&Transaction, SmtpReply> {
        let tx = self.transaction.as_ref().ok_or_else(|| replies::bad_sequence("need MAIL command"))?;
        if tx.rcpts.len() >= max_recipients {
            return Err(replies::too_many_recipients());
        }
        Ok(tx)
    }

    pub fn add_rcpt(&mut self, rcpt: AcceptedRcpt) {
        if let Some(tx) = self.transaction.as_mut() {
            tx.rcpts.push(rcpt);
        }
    }

    pub fn refuse_rcpt(&mut self) {
        if let Some(tx) = self.transaction.as_mut() {
            tx.refused += 1;
        }
    }

    pub fn may_data(&self) -> Result<(), SmtpReply> {
        match &self.transaction {
            None => Err(replies::bad_sequence("need MAIL command")),
            Some(tx) if tx.rcpts.is_empty() && tx.refused > 0 => Err(replies::no_valid_recipients()),
            Some(tx) if tx.rcpts.is_empty() => Err(replies::bad_sequence("need RCPT command")),
            Some(_) => Ok(()),
        }
    }

    /// Ends the transaction (after DATA, RSET or an aborted DATA) and returns it.
    pub fn take(&mut self) -> Option<Transaction> {
        self.transaction.take()
    }

    pub fn may_starttls(&self) -> Result<(), SmtpReply> {
        if self.tls {
            return Err(replies::bad_sequence("TLS already active"));
        }
        if self.transaction.is_some() {
            return Err(replies::bad_sequence("STARTTLS not allowed during a mail transaction"));
        }
        Ok(())
    }

    /// RFC 3207 §4.2: after the handshake the client must start again with EHLO.
    pub fn tls_started(&mut self) {
        *self = Session { tls: true, errors: self.errors, junk: self.junk, ..Session::default() };
    }

    pub fn may_auth(&self) -> Result<(), SmtpReply> {
        if self.helo.is_none() || !self.esmtp {
            return Err(replies::bad_sequence("send EHLO first"));
        }
        if self.auth_user.is_some() {
            return Err(replies::bad_sequence("already authenticated"));
        }
        if self.transaction.is_some() {
            return Err(replies::bad_sequence("AUTH not allowed during a mail transaction"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rcpt() -> AcceptedRcpt {
        AcceptedRcpt {
            address: "a@b".into(),
            orcpt: None,
            notify: None,
            destination: Destination::Mailbox("a@b".into()),
            notes: Vec::new(),
        }
    }

    #[test]
    fn mail_needs_helo_and_no_open_transaction() {
        let mut s = Session::new();
        assert_eq!(s.may_mail().unwrap_err().code, 503);
        s.greet("client".into(), true);
        assert!(s.may_mail().is_ok());
        s.open(ReversePath::Null, MailParams::default());
        assert_eq!(s.may_mail().unwrap_err().code, 503);
    }

    #[test]
    fn data_needs_a_recipient_and_says_why() {
        let mut s = Session::new();
        s.greet("c".into(), true);
        assert_eq!(s.may_data().unwrap_err().code, 503);
        s.open(ReversePath::Null, MailParams::default());
        assert_eq!(s.may_data().unwrap_err().code, 503);
        s.refuse_rcpt();
        assert_eq!(s.may_data().unwrap_err().code, 554);
        s.add_rcpt(rcpt());
        assert!(s.may_data().is_ok());
    }

    #[test]
    fn recipient_limit_gives_452_4_5_3() {
        let mut s = Session::new();
        s.greet("c".into(), true);
        s.open(ReversePath::Null, MailParams::default());
        s.add_rcpt(rcpt());
        let e = s.may_rcpt(1).unwrap_err();
        assert_eq!(e.render(), "452 4.5.3 too many recipients\r\n");
    }

    #[test]
    fn junk_beyond_the_limit_counts() {
        let mut s = Session::new();
        assert!(!s.junk(2) && !s.junk(2));
        assert!(s.junk(2));
    }

    #[test]
    fn starttls_resets_everything_but_tls() {
        let mut s = Session::new();
        s.greet("c".into(), true);
        assert!(s.may_starttls().is_ok());
        s.tls_started();
        assert!(s.tls && s.helo.is_none());
        assert_eq!(s.may_starttls().unwrap_err().code, 503);
    }
}
