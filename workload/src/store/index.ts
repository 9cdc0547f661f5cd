export { appliedVersions, checkMigrations, type Migration, migrate, migrations } from './migrations.js';
export { describeUrl, type OpenSqlOptions, openSql, redactUrl } from './sql.js';
export { createStore } from './store.js';
export type { ItemInfo, LoggedMessage, Queryable, Sql, Store, Turn } from './types.js';
