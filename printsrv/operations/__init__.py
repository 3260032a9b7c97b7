"""Running the installation: system status (batch jobs, schema, maintenance) and backups."""
