//! Differential tester (placeholder).
