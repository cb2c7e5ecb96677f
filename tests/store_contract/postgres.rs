//! The contract on a fresh PostgreSQL database per test.

contract_suite!(postgres);
