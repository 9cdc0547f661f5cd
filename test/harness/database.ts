import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * Creates an empty database named `<prefix>_<random>` on the PostgreSQL server of `admin` (by
 * default TEST_DATABASE_URL, set by scripts/with-postgres.sh) and returns its URL.
 */
export async function freshDatabase(prefix: string, admin = process.env.TEST_DATABASE_URL): Promise<string> {
  if (!admin)
    throw new Error('TEST_DATABASE_URL is not set: run through `make test` (scripts/with-postgres.sh)');
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  try {
    await c.query(`CREATE DATABASE ${name}`);
  } finally {
    await c.end();
  }
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return u.toString();
}
