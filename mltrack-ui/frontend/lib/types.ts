// Shapes of the JSON API served by mltrack_ui.app (keep in step with the Python side).

export type Values = Record<string, string>;

export interface RunRow {
  run_id: string;
  run_name: string | null;
  experiment_id: string;
  /** the experiment's name (sent with every run the API returns, so no page shows an id first) */
  experiment_name?: string | null;
  status: string;
  start_time: number | null;
  end_time: number | null;
  user_id: string | null;
  lifecycle_stage: string;
  params: Values;
  metrics: Record<string, number | null>;
  tags: Values;
}

export interface RunDetail extends RunRow {
  artifact_uri: string;
  system: Values;
}

export interface RunsPage {
  runs: RunRow[];
  next_page_token: string | null;
  total: number | null;
  columns: { params: string[]; metrics: string[]; tags: string[] };
}

export interface Experiment {
  experiment_id: string;
  name: string;
  lifecycle_stage: string;
  creation_time: number | null;
  last_update_time: number | null;
  run_counts: Record<string, number>;
}

export interface Summary {
  tracking_uri: string;
  experiments: number;
  status_counts: Record<string, number>;
  recent_runs: RunRow[];
  models: number;
  experiment_list?: { experiment_id: string; name: string; run_counts: Record<string, number> }[];
  experiment_names?: Record<string, string>;
  best_metrics?: BestMetric[];
}

export interface BestMetric {
  key: string;
  value: number;
  goal: "min" | "max";
  runs: number;
  run_id: string;
  run_name: string | null;
  experiment_id: string;
  experiment_name?: string | null;
}

export interface Series {
  run_id: string;
  key: string;
  steps: number[];
  values: number[];
  /** epoch ms of each point (absent from an older server) */
  timestamps?: number[];
  total: number;
  nonfinite: number;
  downsampled: boolean;
  /** cut by index seeks on a first read (may miss a spike); the exact cut follows on the next read */
  sampled?: boolean;
}

export interface ArtifactEntry {
  path: string;
  is_dir: boolean;
  file_size: number | null;
}

export interface ArtifactPreview {
  path: string;
  kind: "text" | "json" | "image" | "binary";
  size: number;
  media_type: string;
  content?: string;
  truncated?: boolean;
}

export interface Deployment {
  id: string;
  name: string;
  provider: string;
  model_name: string;
  model_version: number;
  alias: string | null;
  config: Record<string, unknown>;
  status: string;
  url: string | null;
  message: string;
  created_at: string;
  updated_at: string;
  refresh_error: string | null;
}

export interface DeploymentsAnswer {
  deployments: Deployment[];
  available: boolean;
  reason: string | null;
}

export interface ModelSummary {
  name: string;
  description: string;
  latest_version: number | null;
  aliases: Record<string, number>;
  tags: Values;
  last_updated_timestamp: number | null;
}

export interface ModelVersion {
  name: string;
  version: number;
  run_id: string | null;
  source: string;
  status: string;
  description: string;
  aliases: string[];
  tags: Values;
  creation_timestamp: number | null;
  deployments: Deployment[];
}

export interface ModelDetail {
  name: string;
  description: string;
  aliases: Record<string, number>;
  tags: Values;
  versions: ModelVersion[];
}

export type PanelData =
  | { kind: "keyvalue"; data: Record<string, string | number | boolean | null> }
  | { kind: "table"; data: { columns: string[]; rows: (string | number | boolean | null)[][] } }
  | { kind: "text"; data: string };

export type Panel = PanelData & { title: string; plugin: string | null; error: boolean };

export interface PluginInfo {
  name: string;
  distribution: string | null;
  version: string | null;
  status: string;
  reason: string | null;
  hooks: string[];
  contributes: Record<string, string[]>;
}
