"""The accounts service: users, passwords, sessions and access tokens (cfd.v1.AccountService)."""
