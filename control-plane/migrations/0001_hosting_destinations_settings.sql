CREATE TABLE `backup_copies` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`backup_id` text NOT NULL,
	`destination_id` text NOT NULL,
	`job_id` text,
	`status` text NOT NULL,
	`object_name` text,
	`size` integer,
	`sha256` text,
	`bytes_done` integer DEFAULT 0 NOT NULL,
	`error_code` text,
	`error_message` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `backup_copies_backup_dest_uq` ON `backup_copies` (`backup_id`,`destination_id`);--> statement-breakpoint
CREATE INDEX `backup_copies_tenant_idx` ON `backup_copies` (`tenant_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `destinations` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`name` text NOT NULL,
	`kind` text NOT NULL,
	`config` text NOT NULL,
	`encrypted_credentials` text,
	`last_test_status` text,
	`last_test_at` integer,
	`last_test_error` text,
	`disabled` integer DEFAULT false NOT NULL,
	`created_by` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `destinations_tenant_created_idx` ON `destinations` (`tenant_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `rate_limit_buckets` (
	`key` text PRIMARY KEY NOT NULL,
	`count` integer NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `runner_domains` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`runner_id` text NOT NULL,
	`domain` text NOT NULL,
	`components` text DEFAULT '[]' NOT NULL,
	`databases` text DEFAULT '[]' NOT NULL,
	`details` text,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `runner_domains_runner_domain_uq` ON `runner_domains` (`runner_id`,`domain`);--> statement-breakpoint
CREATE INDEX `runner_domains_tenant_idx` ON `runner_domains` (`tenant_id`,`runner_id`);--> statement-breakpoint
CREATE TABLE `settings` (
	`tenant_id` text NOT NULL,
	`key` text NOT NULL,
	`value` text NOT NULL,
	`updated_by` text,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `settings_tenant_key_uq` ON `settings` (`tenant_id`,`key`);