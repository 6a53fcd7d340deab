"""The notifier's rules: channels, delivery records, summaries, signatures, address policy,
retry classification and Slack formatting. No infrastructure imports."""
