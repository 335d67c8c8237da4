"""What every CFD Mesh service shares: configuration, server shell, auth, database, CLI."""
