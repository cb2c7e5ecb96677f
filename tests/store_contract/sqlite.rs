//! The contract on a fresh SQLite file per test.

contract_suite!(sqlite);
