//! Email out, when an SMTP server is configured (`serve --smtp-url`): today,
//! invitations. A send that fails is reported to the caller (the invitation
//! stays valid; its link is shown once anyway), never retried behind its back.

use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Where mail goes and whom it comes from.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `smtp://host:port` (plain, a local relay), `smtp://host:587?tls=required`
    /// (STARTTLS) or `smtps://host:465`; credentials as `smtp://user:pass@host`.
    pub smtp_url: String,
    /// The sender, e.g. `Novacula <novacula@example.com>`.
    pub from: String,
    /// The console's public address, for links in mail (`https://novacula.example.com`).
    pub public_url: String,
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
    pub public_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail configuration: {0}")]
    Config(String),
    #[error("sending mail: {0}")]
    Send(String),
}

impl Mailer {
    pub fn new(c: &MailConfig) -> Result<Mailer, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&c.smtp_url)
            .map_err(|e| MailError::Config(format!("--smtp-url: {e}")))?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        let from = c.from.parse().map_err(|e| MailError::Config(format!("--mail-from {:?}: {e}", c.from)))?;
        Ok(Mailer { transport, from, public_url: c.public_url.trim_end_matches('/').to_string() })
    }

    /// Send a plain-text mail to `to`.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let to = to.parse().map_err(|e| MailError::Send(format!("address {to:?}: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Send(e.to_string()))?;
        self.transport.send(message).await.map(drop).map_err(|e| MailError::Send(e.to_string()))
    }
}
