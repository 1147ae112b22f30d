import type { FakeDrive } from "../destinations/fake-gdrive-server";

/** The API body that creates a Google Drive destination on the local fake Drive (consent, token, API). */
export function driveDestinationBody(drive: FakeDrive, name: string, clientSecret = drive.clientSecret) {
  return {
    name,
    kind: "gdrive",
    config: {
      folderId: drive.rootId,
      apiBase: drive.apiBase,
      uploadBase: drive.uploadBase,
      tokenUrl: drive.tokenUrl,
      authUrl: drive.authUrl,
    },
    credentials: { clientId: drive.clientId, clientSecret },
  };
}
