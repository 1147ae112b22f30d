import type { FakeDrive } from "../destinations/fake-gdrive-server";

/** A Drive destination's config pointing at the local fake Drive (the runner needs no consent URL). */
export function fakeDriveConfig(drive: FakeDrive) {
  return {
    folderId: drive.rootId,
    apiBase: drive.apiBase,
    uploadBase: drive.uploadBase,
    tokenUrl: drive.tokenUrl,
  };
}

/** The API body that creates a Google Drive destination on the local fake Drive (consent, token, API). */
export function driveDestinationBody(drive: FakeDrive, name: string, clientSecret = drive.clientSecret) {
  return {
    name,
    kind: "gdrive",
    config: { ...fakeDriveConfig(drive), authUrl: drive.authUrl },
    credentials: { clientId: drive.clientId, clientSecret },
  };
}
