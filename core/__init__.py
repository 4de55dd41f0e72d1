"""Infrastructure shared by the apps (neither accounts nor annotation): prepared statements, the
resilient cache, health, metrics and logging. Imports no app and nothing from config/."""
