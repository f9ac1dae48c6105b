"""The Files API's domain: uploads with their limits, expiry and ids."""
