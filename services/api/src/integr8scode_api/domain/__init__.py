"""Plain models and rules of the API: no infrastructure imports here."""
