//! Domain types shared by the gateway: request bodies, validated values, job records, errors, JWT claims. No IO.
