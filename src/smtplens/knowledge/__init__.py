"""What smtplens knows about SMTP codes, kept as validated data files."""
