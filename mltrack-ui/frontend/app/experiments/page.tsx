"use client";

import Link from "next/link";

import { ErrorNote, Loading } from "@/components/Common";
import { When } from "@/components/When";
import type { Experiment } from "@/lib/types";
import { useApi } from "@/lib/useApi";

export default function Experiments() {
  const { data, error, loading } = useApi<Experiment[]>("/api/experiments");
  return (
    <>
      <h1>Experiments</h1>
      <ErrorNote error={error} />
      <Loading when={loading} />
      {data && (
        <div className="table-wrap">
          <table className="grid" data-testid="experiments-table">
            <thead>
              <tr>
                <th>id</th>
                <th>name</th>
                <th>runs</th>
                <th>finished</th>
                <th>failed</th>
                <th>running</th>
                <th>created</th>
              </tr>
            </thead>
            <tbody>
              {data.map((e) => {
                const total = Object.values(e.run_counts).reduce((a, b) => a + b, 0);
                return (
                  <tr key={e.experiment_id}>
                    <td>{e.experiment_id}</td>
                    <td>
                      <Link prefetch={false} href={`/runs/?experiment=${encodeURIComponent(e.experiment_id)}`}>{e.name}</Link>
                    </td>
                    <td className="num">{total}</td>
                    <td className="num">{e.run_counts.FINISHED ?? 0}</td>
                    <td className="num">{e.run_counts.FAILED ?? 0}</td>
                    <td className="num">{e.run_counts.RUNNING ?? 0}</td>
                    <td><When at={e.creation_time} /></td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
