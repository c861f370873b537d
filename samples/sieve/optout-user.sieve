# A user who wants no quarantine at all can move it back in their own
# script (it runs after sieve_before): put failing mail in INBOX anyway.
# Alternatively add the address to the opt-out list of quarantine.sieve.
require ["fileinto", "mailbox", "imap4flags"];

# Mark it so a mail client can show it, but keep it in INBOX.
addflag "$Junk";
keep;
