# lmtpfilter sample: file mail that fails our checks into "Quarantine".
#
# Install as Dovecot's sieve_before script (see samples/dovecot/).
# It looks only at the Authentication-Results that carries OUR authserv-id:
# lmtpfilter renames every other A-R claiming that id (X-Original-...), so
# a sender can neither forge a pass nor trigger a fail with a header of
# their own, and results written by other hosts are ignored.
#
# Change the id in ONE place: the "authserv" variable below. It is a
# regular expression: write every dot as \\. (two backslashes in Sieve).

require ["fileinto", "mailbox", "regex", "variables", "envelope"];

set "authserv" "mail\\.example\\.com";

# Per-user opt-out: recipients listed here never get quarantined by this
# script (their own Sieve rules still run). For many users, or users managed
# in a directory, see optout-user.sieve: a per-user sieve_before instead.
# A user's own script cannot undo the quarantine: once this script files a
# message, Dovecot runs no further script for it.
if envelope :is "to" ["optout@example.com"] {
    keep;
    stop;
}

# SPF: the envelope sender's domain says this client may not send for it.
if header :regex "Authentication-Results"
        "^[[:space:]]*${authserv}[[:space:]]*;(.*;)?[[:space:]]*spf=fail([[:space:];(]|$)" {
    fileinto :create "Quarantine";
    stop;
}

# DMARC: the From: domain asks for quarantine or reject and the message failed.
# A failure under p=none (dis=none) stays in INBOX: that domain only asked
# for reports.
if header :regex "Authentication-Results"
        "^[[:space:]]*${authserv}[[:space:]]*;(.*;)?[[:space:]]*dmarc=fail[[:space:]]*\\([^)]*dis=(quarantine|reject)" {
    fileinto :create "Quarantine";
    stop;
}
