"use client";

import { useEffect, useState } from "react";

import { apiBase } from "./api";

/**
 * The API's origin for URLs the browser itself requests (links, images): "" when the UI server
 * serves the front end, the `config.json` base when the front end is hosted on another origin.
 */
export function useApiBase(): string {
  const [base, setBase] = useState("");
  useEffect(() => {
    let live = true;
    void apiBase().then((value) => {
      if (live) setBase(value);
    });
    return () => {
      live = false;
    };
  }, []);
  return base;
}
