"""PostgreSQL: schema, migrations, the embedded server and the translation of its errors."""
