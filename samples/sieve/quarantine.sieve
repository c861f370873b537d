# lmtpfilter sample: file mail into "Quarantine" when lmtpfilter says so.
#
# Install as Dovecot's sieve_before script (see samples/dovecot/).
# lmtpfilter decides (SPF, DKIM, DMARC and the domain's quarantine_on in
# lmtpfilter.conf) and, in annotate mode, writes
#
#   X-Disposition-Quarantine: REASON (details)
#
# above the message when it is to be quarantined; REASON is dmarc-reject,
# dmarc-quarantine, spf-fail or from-invalid. Every such field the sender
# wrote is renamed X-Original-X-Disposition-Quarantine before ours goes in,
# so a sender can neither fake nor hide the decision for an annotated
# domain. (Mail for mode=off and mode=observe domains reaches Dovecot as
# sent: a sender could only quarantine their own message there.)
#
# To change what is quarantined, change quarantine_on, not this script:
# then "mode = observe" logs exactly what this script will file.

require ["fileinto", "mailbox", "envelope"];

# Per-user opt-out: recipients listed here never get quarantined by this
# script (their own Sieve rules still run). For many users, or users managed
# in a directory, see optout-user.sieve: a per-user sieve_before instead.
# A user's own script cannot undo the quarantine: once this script files a
# message, Dovecot runs no further script for it.
if envelope :is "to" ["optout@example.com"] {
    keep;
    stop;
}

if exists "X-Disposition-Quarantine" {
    fileinto :create "Quarantine";
    stop;
}
