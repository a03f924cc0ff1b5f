"""What a caseworker sees: one person's consolidated status, limited by consent."""
