"""Lambda entry points: parse, load, plan, act. Powertools lives here."""
