"""The GA4GH Tool Registry Service (TRS) 2.0.1 adapter."""
