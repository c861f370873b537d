# lmtpfilter sample: the sieve_before script for a user who opted out of
# the quarantine. It files nothing: every message stays in INBOX (or wherever
# the user's own script puts it) with lmtpfilter's headers for the mail
# client to show.
#
# Why a separate script: a user's personal script cannot undo the
# quarantine. When a sieve_before script files a message (fileinto without
# keep), Pigeonhole stops there and the personal script never runs. So the
# exception has to happen before, in one of two ways:
#
#  1. A few users: list their addresses in the opt-out test at the top of
#     quarantine.sieve. Nothing else to configure.
#
#  2. Per user in the userdb: Dovecot lets userdb extra fields override
#     plugin settings, so point this user's sieve_before here instead of at
#     quarantine.sieve. With a passwd-file passdb+userdb, the last field:
#
#       owner@example.com:{SHA512-CRYPT}...::::::userdb_sieve_before=/etc/dovecot/sieve/optout-user.sieve
#
#     (with LDAP/SQL, return a "sieve_before" userdb field the same way).
#     Compile it once with: sievec /etc/dovecot/sieve/optout-user.sieve

# No actions: the implicit keep stays in effect, so the user's own script
# runs next exactly as it would without any sieve_before.
