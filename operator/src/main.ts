// The operator arrives with its own issue; this entry point keeps the workspace buildable.
console.error('xianyu-operator: not implemented yet (see the operator issue)');
process.exit(1);
